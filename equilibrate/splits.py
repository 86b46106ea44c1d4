"""Which prompts train and which evaluate.

Training data must never contain an evaluation prompt, or the evaluation measures memory instead of
behaviour. The split is fixed here, once, for the whole book:

| set | role |
|---|---|
| XSTest (safe and unsafe) | evaluation only |
| SimpleSafetyTests | evaluation only |
| JailbreakBench | evaluation only |
| AdvBench | half and half, by a hash of the normalized prompt (stable across machines) |
| HarmBench | ``val`` split trains, ``test`` split evaluates |
| Do-Not-Answer, BeaverTails (FDC labels), HH-RLHF | training only |

`evaluation_prompts()` gives every evaluation prompt in normalized form; the FDC pool drops any
training candidate that matches one, whatever set it came from (JailbreakBench, for example,
reuses AdvBench and HarmBench behaviours).
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from equilibrate import data

EVAL_ONLY = ("xstest", "simplesafetytests", "jailbreakbench")
TRAIN_ONLY = ("do_not_answer", "beavertails_fdc", "hh_rlhf_harmless", "hh_rlhf_helpful")
SPLIT_SOURCES = ("advbench", "harmbench")
HARMFUL_EVAL_SOURCES = ("advbench", "harmbench", "jailbreakbench", "simplesafetytests")


def _hash_half(text: str) -> str:
    digest = hashlib.sha256(data.normalize_prompt(text).encode("utf-8")).digest()
    return "eval" if digest[0] % 2 == 0 else "train"


def pool_split(source: str, row: dict) -> str:
    """``"train"`` or ``"eval"`` for one row of ``source`` (a registry name)."""
    if source in EVAL_ONLY:
        return "eval"
    if source in TRAIN_ONLY:
        return "train"
    if source == "advbench":
        return _hash_half(row["prompt"])
    if source == "harmbench":
        return "eval" if row.get("split") == "test" else "train"
    raise ValueError(
        f"pool_split: unknown source '{source}'; expected one of "
        f"{EVAL_ONLY + TRAIN_ONLY + SPLIT_SOURCES}"
    )


@lru_cache(maxsize=1)
def evaluation_prompts() -> frozenset[str]:
    """Normalized text of every prompt used for evaluation anywhere in the book."""
    keep: set[str] = set()
    for source in EVAL_ONLY + SPLIT_SOURCES:
        for row in data.load(source):
            if pool_split(source, row) == "eval":
                keep.add(data.normalize_prompt(row["prompt"]))
    return frozenset(keep)


def harmful_eval_prompts(n: int | None = 200, seed: int = 0) -> list[dict]:
    """Harmful evaluation prompts, balanced over the evaluation sources.

    Returns up to ``n`` rows ``{id, prompt, source, category}`` (``category`` is the source's own
    harm label where it has one), deduplicated on the normalized prompt, drawn round-robin from
    AdvBench's evaluation half, HarmBench's test split, JailbreakBench and SimpleSafetyTests in an
    order fixed by ``seed``. ``n=None`` returns all of them.
    """
    rng = random.Random(seed)
    per_source: list[list[dict]] = []
    for source in HARMFUL_EVAL_SOURCES:
        rows = [r for r in data.load(source) if pool_split(source, r) == "eval"]
        rows = [
            {
                "id": f"{source}:{r['id']}",
                "prompt": r["prompt"],
                "source": source,
                # SimpleSafetyTests' ``category`` is the kind of request; its harm label is
                # ``harm_area``.
                "category": r.get("harm_area") or r.get("category") or "",
            }
            for r in rows
        ]
        rng.shuffle(rows)
        per_source.append(rows)
    out: list[dict] = []
    seen: set[str] = set()
    while any(per_source) and (n is None or len(out) < n):
        for rows in per_source:
            while rows:
                row = rows.pop()
                key = data.normalize_prompt(row["prompt"])
                if key not in seen:
                    seen.add(key)
                    out.append(row)
                    break
            if n is not None and len(out) >= n:
                break
    return out
