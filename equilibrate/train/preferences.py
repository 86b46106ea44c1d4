"""Preference pairs for a recipe's ``data`` section, in trl's conversational format.

Every row this module returns has ``prompt`` (a list of messages ending with a user turn),
``chosen`` and ``rejected`` (each a list holding one assistant message), and an ``id``. AMA
columns (``chosen_spans``/``rejected_spans``) pass through untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError, DataFormatError
from equilibrate.train.recipes import DataSection
from equilibrate.train.synthetic import synthetic_pairs

logger = logging.getLogger(__name__)

PAIR_FIELDS = ("prompt", "chosen", "rejected")


def _messages(value: Any, role: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return value


def pair_from_registry_row(row: dict[str, Any]) -> dict[str, Any]:
    """A conversational pair from a registry row with prompt/chosen/rejected text.

    Multi-turn HH-RLHF rows carry ``chosen_messages``/``rejected_messages``; the pair is then the
    shared conversation up to the last assistant turn, and the two differing last turns.
    """
    chosen_msgs, rejected_msgs = row.get("chosen_messages"), row.get("rejected_messages")
    if chosen_msgs and rejected_msgs and len(chosen_msgs) >= 2 and len(rejected_msgs) >= 2:
        if chosen_msgs[-1]["role"] == "assistant" and rejected_msgs[-1]["role"] == "assistant":
            return {
                "id": row["id"],
                "prompt": [dict(m) for m in chosen_msgs[:-1]],
                "chosen": [dict(chosen_msgs[-1])],
                "rejected": [dict(rejected_msgs[-1])],
            }
    return {
        "id": row["id"],
        "prompt": _messages(row["prompt"], "user"),
        "chosen": _messages(row["chosen"], "assistant"),
        "rejected": _messages(row["rejected"], "assistant"),
    }


def read_pairs_jsonl(path: Path) -> list[dict[str, Any]]:
    """Preference rows from a JSONL file; each needs prompt, chosen and rejected."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, number, None, f"not valid JSON: {err}") from None
            for name in PAIR_FIELDS:
                if name not in record:
                    raise DataFormatError(
                        path, number, name, "missing (a pair needs prompt, chosen and rejected)"
                    )
            record.setdefault("id", f"{path.stem}/{number}")
            record["prompt"] = _messages(record["prompt"], "user")
            record["chosen"] = _messages(record["chosen"], "assistant")
            record["rejected"] = _messages(record["rejected"], "assistant")
            rows.append(record)
    return rows


def _from_mix(path: Path) -> list[dict[str, Any]]:
    """Build (or read back from the cache) the mix a YAML file of ``MixConfig`` settings names."""
    try:
        from equilibrate.fdc import MixConfig, build_mix
    except ImportError as err:
        raise ConfigError(
            "data.source",
            f"{path} is a mix file but equilibrate.fdc cannot build mixes here ({err})",
        ) from None
    loader = getattr(MixConfig, "load", None)
    config = loader(path) if loader else MixConfig(**_yaml(path))
    dataset, _manifest = build_mix(config)
    return [dict(row) for row in dataset]


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def load_pairs(
    data: DataSection, *, num_words: int = 256, spans: bool = False
) -> list[dict[str, Any]]:
    """The preference rows ``data`` names, shuffled with ``data.seed`` and cut to ``data.limit``.

    ``num_words`` is the vocabulary of the synthetic source (the word tokenizer's size) and
    ``spans`` gives synthetic rows AMA spans (see :func:`synthetic_pairs`).
    """
    source = data.source
    if source == "synthetic":
        return synthetic_pairs(
            data.limit or 64,
            prompt_words=data.prompt_words,
            response_words=data.response_words,
            num_words=num_words,
            seed=data.seed,
            spans=spans,
        )
    path = Path(source).expanduser()
    if path.is_dir() and (path / "mix.jsonl").is_file():  # a folder written by build-mix
        path, source = path / "mix.jsonl", str(path / "mix.jsonl")
    if source.endswith(".jsonl"):
        if not path.is_file():
            raise ConfigError("data.source", f"preference file not found: {path}")
        rows = read_pairs_jsonl(path)
    elif source.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise ConfigError("data.source", f"mix file not found: {path}")
        rows = _from_mix(path)
    else:
        from equilibrate.data import load

        try:
            raw = load(source)
        except (KeyError, ValueError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise ConfigError("data.source", f"unknown dataset {source!r}: {err}") from None
        if not raw or not all(f in raw[0] for f in PAIR_FIELDS):
            raise ConfigError(
                "data.source",
                f"dataset {source!r} has no prompt/chosen/rejected "
                "fields; use hh_rlhf_harmless, hh_rlhf_helpful, a .jsonl or a mix",
            )
        rows = [pair_from_registry_row(r) for r in raw]
    random.Random(data.seed).shuffle(rows)
    if data.limit is not None:
        rows = rows[: data.limit]
    logger.info("%d preference pairs from %s", len(rows), source)
    return rows


def fingerprint(rows: list[dict[str, Any]]) -> str:
    """SHA-256 of the rows' content (order matters: it is the training order's input)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()
