"""The categorized prompt pool: every training prompt the FDC mixes can draw from.

Sources, in order of precedence (a prompt seen in an earlier source wins a duplicate):

| source | category from |
|---|---|
| ``beavertails_fdc`` | the authors' label |
| ``hh_rlhf_harmless`` (first human turn) | the embedding categorizer |
| ``advbench`` (training half) | the embedding categorizer |
| ``harmbench`` (``val`` split) | the embedding categorizer |
| ``do_not_answer`` | the embedding categorizer |

Dropped, and counted per source and reason: rows of a source's evaluation split
(``splits.pool_split``), prompts equal (after ``normalize_prompt``) to any evaluation prompt
anywhere (``splits.evaluation_prompts``), empty prompts, and duplicates.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from equilibrate.errors import ConfigError
from equilibrate.fdc.categories import canonical_category

log = logging.getLogger(__name__)

POOL_SOURCES: tuple[str, ...] = (
    "beavertails_fdc",
    "hh_rlhf_harmless",
    "advbench",
    "harmbench",
    "do_not_answer",
)

DROP_REASONS = ("evaluation split", "evaluation prompt", "empty", "duplicate")


@dataclass
class Pool:
    """Pool rows and what was left out.

    Attributes:
        rows: dicts ``{id, prompt, source, category, confidence, labelled_by}``; ``id`` is
            ``"<source>:<row id>"``, ``labelled_by`` is ``"authors"`` or ``"embedding"``.
        dropped: ``Counter`` of ``(source, reason)`` with reason in :data:`DROP_REASONS`.
    """

    rows: list[dict[str, Any]]
    dropped: Counter = field(default_factory=Counter)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame."""
        return pd.DataFrame(self.rows)

    def shares(self) -> pd.DataFrame:
        """Counts of each category per source (rows = source, columns = category)."""
        return pd.crosstab(self.frame()["source"], self.frame()["category"])

    def drop_table(self) -> pd.DataFrame:
        """Dropped counts, rows = source, columns = reason."""
        records = [{"source": s, "reason": r, "n": n} for (s, r), n in self.dropped.items()]
        if not records:
            return pd.DataFrame(columns=list(DROP_REASONS))
        table = pd.DataFrame(records).pivot_table(
            index="source", columns="reason", values="n", aggfunc="sum", fill_value=0
        )
        return table.astype(int)


def _candidates(source: str, rows: Sequence[dict]) -> list[dict]:
    """Pool candidates of one source with its own id and label (when it has one)."""
    out = []
    for row in rows:
        label = canonical_category(row["category"]) if source == "beavertails_fdc" else None
        out.append(
            {
                "id": f"{source}:{row['id']}",
                "prompt": row["prompt"],
                "source": source,
                "label": label,
                "row": row,
            }
        )
    return out


def build_pool(
    categorizer: Any = None,
    sources: Sequence[str] = POOL_SOURCES,
    *,
    loaded: dict[str, list[dict]] | None = None,
    evaluation: frozenset[str] | set[str] | None = None,
) -> Pool:
    """Build the categorized, deduplicated pool with evaluation prompts excluded.

    Args:
        categorizer: anything with ``categorize(prompts)`` for rows without an authors' label;
            default :func:`equilibrate.fdc.categorize.trained_categorizer` (5 classes).
        sources: which sources to include, from :data:`POOL_SOURCES`.
        loaded: rows per source instead of ``equilibrate.data.load`` (tests pass small data).
        evaluation: normalized evaluation prompts instead of ``splits.evaluation_prompts()``.
    """
    from equilibrate import data, splits

    unknown = [s for s in sources if s not in POOL_SOURCES]
    if unknown:
        raise ConfigError("sources", f"unknown {unknown}; expected some of {POOL_SOURCES}")
    evaluation = splits.evaluation_prompts() if evaluation is None else evaluation
    dropped: Counter = Counter()
    seen: set[str] = set()
    kept: list[dict] = []
    for source in sources:
        rows = loaded[source] if loaded is not None else data.load(source)
        for cand in _candidates(source, rows):
            key = data.normalize_prompt(cand["prompt"])
            if not key:
                dropped[(source, "empty")] += 1
            elif splits.pool_split(source, cand["row"]) == "eval":
                dropped[(source, "evaluation split")] += 1
            elif key in evaluation:
                dropped[(source, "evaluation prompt")] += 1
            elif key in seen:
                dropped[(source, "duplicate")] += 1
            else:
                seen.add(key)
                kept.append(cand)
    todo = [c for c in kept if c["label"] is None]
    if todo:
        if categorizer is None:
            from equilibrate.fdc.categorize import trained_categorizer

            categorizer, _ = trained_categorizer()
        verdicts = categorizer.categorize([c["prompt"] for c in todo])
        for cand, verdict in zip(todo, verdicts, strict=True):
            cand["category"], cand["confidence"] = verdict.category, verdict.confidence
            cand["labelled_by"] = "embedding"
    out = []
    for cand in kept:
        if cand["label"] is not None:
            cand["category"], cand["confidence"], cand["labelled_by"] = (
                cand["label"],
                1.0,
                "authors",
            )
        out.append(
            {
                k: cand[k]
                for k in ("id", "prompt", "source", "category", "confidence", "labelled_by")
            }
        )
    log.info("pool: %d prompts kept, %d dropped", len(out), sum(dropped.values()))
    return Pool(out, dropped)
