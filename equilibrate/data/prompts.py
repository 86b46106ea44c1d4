"""Harmful prompts from several sets, combined and deduplicated.

Two prompts are the same when their :func:`normalize_prompt` keys are equal: lower case, runs of
whitespace collapsed to one space, punctuation and spaces stripped from both ends. AdvBench,
HarmBench and JailbreakBench share many behaviours, so this matters.
"""

from __future__ import annotations

import logging
import random
import re
import string
from collections.abc import Sequence
from typing import Any

from equilibrate.data.registry import load
from equilibrate.errors import ConfigError

log = logging.getLogger(__name__)

HARMFUL_SOURCES = ("advbench", "harmbench", "jailbreakbench", "simplesafetytests", "do_not_answer")

_SPACES = re.compile(r"\s+")
_EDGES = string.punctuation + string.whitespace + "\u201c\u201d\u2018\u2019\u2026"


def normalize_prompt(text: str) -> str:
    """The deduplication key of a prompt: lower case, whitespace collapsed, end punctuation off.

    >>> normalize_prompt("  How do I  pick a lock?\\n")
    'how do i pick a lock'
    """
    return _SPACES.sub(" ", text.lower()).strip(_EDGES)


def harmful_prompts(
    sources: Sequence[str] = HARMFUL_SOURCES, n: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Harmful prompts from ``sources``, deduplicated, optionally a seeded sample of ``n``.

    Rows: ``id`` (``"<source>/<id in source>"``), ``prompt``, ``source``. Sets are read in the
    order given and the first occurrence of a prompt wins. HarmBench contributes its standard and
    contextual behaviours (a contextual prompt carries its context). With ``n``, ``n`` rows are
    drawn without replacement by ``random.Random(seed)`` and returned in their combined order.
    """
    unknown = [s for s in sources if s not in HARMFUL_SOURCES]
    if unknown:
        raise ConfigError("sources", f"unknown {unknown}; expected some of {HARMFUL_SOURCES}")
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for source in sources:
        for row in load(source):
            key = normalize_prompt(row["prompt"])
            if key in seen:
                continue
            seen.add(key)
            rows.append({"id": f"{source}/{row['id']}", "prompt": row["prompt"], "source": source})
    log.debug("harmful_prompts: %d unique prompts from %s", len(rows), list(sources))
    if n is None:
        return rows
    if not 0 <= n <= len(rows):
        raise ConfigError("n", f"{n} is not between 0 and the {len(rows)} unique prompts")
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]
