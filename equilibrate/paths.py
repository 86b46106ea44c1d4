"""Where the library reads data and keeps its caches.

- ``EQUILIBRATE_DATA_DIR``: a folder holding the datasets (CI points it at ``../shared/data``).
  Without it, loaders download each dataset from its upstream source into the cache.
- ``EQUILIBRATE_CACHE_DIR``: generations, converted models, trained adapters, scores.
  Defaults to ``~/.cache/equilibrate``; the Makefile points it at ``.cache/`` in the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    """The local data folder named by ``EQUILIBRATE_DATA_DIR``, or ``None`` when unset."""
    value = os.environ.get("EQUILIBRATE_DATA_DIR")
    return Path(value).expanduser().resolve() if value else None


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root (created on demand)."""
    root = Path(os.environ.get("EQUILIBRATE_CACHE_DIR", "~/.cache/equilibrate")).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when the Hugging Face offline switches are set (no network is tried)."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(f, "0").lower() in ("1", "true", "yes") for f in flags)
