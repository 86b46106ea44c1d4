"""Test-wide settings: offline, a private cache, the shared data folder when present."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_REPO = Path(__file__).resolve().parents[1]
if "EQUILIBRATE_DATA_DIR" not in os.environ:
    _shared = _REPO.parent / "shared" / "data"
    if _shared.is_dir():
        os.environ["EQUILIBRATE_DATA_DIR"] = str(_shared)
os.environ.setdefault("EQUILIBRATE_CACHE_DIR", str(_REPO / ".cache"))

import pytest  # noqa: E402

#: Skip marker for tests that read the real datasets: they need a local data folder.
requires_data = pytest.mark.skipif(
    not os.environ.get("EQUILIBRATE_DATA_DIR"),
    reason="EQUILIBRATE_DATA_DIR is not set (the tests read the real datasets from it)",
)
