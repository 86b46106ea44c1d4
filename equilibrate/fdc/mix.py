"""Training mixes: safety pairs by category quota, general helpful pairs, counter-examples.

``build_mix(MixConfig(...))`` returns a ``datasets.Dataset`` in trl's conversational preference
format::

    prompt   = [{"role": "user", "content": ...}]
    chosen   = [{"role": "assistant", "content": ...}]
    rejected = [{"role": "assistant", "content": ...}]

plus ``id``, ``category`` (EHD/IHD/MHD, ``NONE`` for counter-examples, ``HELPFUL`` for general
pairs) and ``source`` (``templated``/``generated``/``dataset``/``counter``/``hh_rlhf_helpful``),
and a manifest of counts and settings. Both are saved under
``cache_dir("fdc", "mixes", <config hash>)`` (``mix.jsonl``, ``manifest.json``); a second call
with the same config reads them back.

Two modes: ``"fdc"`` draws each harmful category to its quota; ``"naive"`` draws the same number
of safety pairs (quota total plus counter-examples) from all harmful prompts at random, without
regard to category and without counter-examples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError
from equilibrate.fdc.categories import HARMFUL
from equilibrate.fdc.pairs import (
    PAIR_SOURCES,
    PairSet,
    Responder,
    build_counter_examples,
    build_pairs,
)
from equilibrate.fdc.pool import Pool
from equilibrate.paths import cache_dir

log = logging.getLogger(__name__)

MODES = ("fdc", "naive")
MIX_VERSION = 1


@dataclass(frozen=True)
class MixConfig:
    """Settings of one training mix.

    Attributes:
        safety_total: number of safety pairs (EHD + IHD + MHD), >= 0.
        ratio: relative shares of EHD : IHD : MHD (three numbers >= 0, not all 0).
        helpful_share: general helpful pairs (HH-RLHF helpful-base) as a share of
            ``safety_total`` (0.5 -> 32 pairs for 64 safety pairs).
        counter_share: counter-examples (harmless look-alikes; chosen helps, rejected refuses) as
            a share of ``safety_total``.
        mode: ``"fdc"`` (quotas by category) or ``"naive"`` (same total, category ignored).
        pair_source: how safety pairs get their answers, one of ``PAIR_SOURCES``.
        profile: the policy's profile name (answers for rejected / counter-example chosen).
        max_new_tokens: length of the policy's answers (tokens).
        oversample: build this many times the quota of candidates at once, to absorb pairs
            dropped by verification (>= 1).
        seed: draws prompts and helpful pairs.
    """

    safety_total: int = 64
    ratio: tuple[float, float, float] = (10.0, 3.0, 1.0)
    helpful_share: float = 0.5
    counter_share: float = 0.125
    mode: str = "fdc"
    pair_source: str = "templated"
    profile: str = "cpu"
    max_new_tokens: int = 64
    oversample: float = 1.25
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.safety_total, int) or self.safety_total < 0:
            raise ConfigError(
                "safety_total", f"expected an integer >= 0, got {self.safety_total!r}"
            )
        ratio = tuple(self.ratio)
        if (
            len(ratio) != 3
            or any(not isinstance(r, (int, float)) or r < 0 for r in ratio)
            or sum(ratio) <= 0
        ):
            raise ConfigError(
                "ratio",
                f"expected three numbers >= 0 for EHD:IHD:MHD, not all 0, got {self.ratio!r}",
            )
        object.__setattr__(self, "ratio", tuple(float(r) for r in ratio))
        for name in ("helpful_share", "counter_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(name, f"expected a number >= 0, got {value!r}")
        if self.mode not in MODES:
            raise ConfigError("mode", f"expected one of {MODES}, got {self.mode!r}")
        if self.pair_source not in PAIR_SOURCES:
            raise ConfigError(
                "pair_source", f"expected one of {PAIR_SOURCES}, got {self.pair_source!r}"
            )
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(
                "max_new_tokens", f"expected an integer >= 1, got {self.max_new_tokens!r}"
            )
        if not isinstance(self.oversample, (int, float)) or self.oversample < 1:
            raise ConfigError("oversample", f"expected a number >= 1, got {self.oversample!r}")

    def quotas(self) -> dict[str, int]:
        """Pairs per harmful category, summing exactly to ``safety_total`` (largest remainder)."""
        total = sum(self.ratio)
        exact = [self.safety_total * r / total for r in self.ratio]
        counts = [int(x) for x in exact]
        order = sorted(range(3), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[: self.safety_total - sum(counts)]:
            counts[i] += 1
        return dict(zip(HARMFUL, counts, strict=True))

    @property
    def helpful_total(self) -> int:
        """Number of general helpful pairs."""
        return round(self.helpful_share * self.safety_total)

    @property
    def counter_total(self) -> int:
        """Number of counter-example pairs (``fdc`` mode; folded into safety pairs in naive)."""
        return round(self.counter_share * self.safety_total)

    def key(self) -> str:
        """A short hash of the settings (names the cache folder)."""
        payload = json.dumps({**asdict(self), "version": MIX_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class ShortfallError(ConfigError):
    """More pairs of a category were asked for than the pool can give."""


def _draw(rows: list[dict], rng: random.Random) -> list[dict]:
    """``rows`` in a seeded order (the first ones are the first choice)."""
    order = sorted(rows, key=lambda r: r["id"])
    rng.shuffle(order)
    return order


def _fill(
    group: str,
    candidates: list[dict],
    need: int,
    build: Any,
    oversample: float,
) -> PairSet:
    """Build pairs from ``candidates`` in order, in chunks, until ``need`` are verified."""
    out = PairSet()
    if need == 0:
        return out
    if len(candidates) < need:
        raise ShortfallError(
            group, f"asked for {need} pairs but the pool has only {len(candidates)} prompts"
        )
    start = 0
    while len(out.pairs) < need and start < len(candidates):
        chunk = max(1, int((need - len(out.pairs)) * oversample + 0.999))
        out.extend(build(candidates[start : start + chunk]))
        start += chunk
    if len(out.pairs) < need:
        raise ShortfallError(
            group,
            f"asked for {need} pairs; only {len(out.pairs)} of {len(candidates)} prompts gave a "
            f"pair that passed verification (dropped: {dict(out.dropped)})",
        )
    out.pairs = out.pairs[:need]
    return out


def helpful_pairs(n: int, seed: int, evaluation: frozenset[str] | set[str] | None = None) -> list:
    """``n`` general helpful pairs from HH-RLHF helpful-base (seeded), skipping empty or identical
    answers and evaluation prompts."""
    from equilibrate import data, splits

    evaluation = splits.evaluation_prompts() if evaluation is None else evaluation
    rows = []
    seen: set[str] = set()
    for row in data.load("hh_rlhf_helpful"):
        key = data.normalize_prompt(row["prompt"])
        chosen, rejected = row["chosen"].strip(), row["rejected"].strip()
        if (
            not key
            or key in seen
            or key in evaluation
            or not chosen
            or not rejected
            or chosen == rejected
        ):
            continue
        seen.add(key)
        rows.append(
            {
                "id": f"hh_rlhf_helpful:{row['id']}",
                "prompt": row["prompt"],
                "chosen": chosen,
                "rejected": rejected,
                "category": "HELPFUL",
                "source": "hh_rlhf_helpful",
            }
        )
    if n > len(rows):
        raise ShortfallError("helpful_share", f"asked for {n} helpful pairs; there are {len(rows)}")
    random.Random(seed).shuffle(rows)
    return rows[:n]


def to_conversational(pair: dict) -> dict:
    """A plain pair -> trl's conversational preference row (plus id, category, source)."""
    return {
        "id": pair["id"],
        "prompt": [{"role": "user", "content": pair["prompt"]}],
        "chosen": [{"role": "assistant", "content": pair["chosen"]}],
        "rejected": [{"role": "assistant", "content": pair["rejected"]}],
        "category": pair["category"],
        "source": pair["source"],
    }


def candidate_order(config: MixConfig, pool: Pool | Sequence[dict]) -> dict[str, list[dict]]:
    """The pool rows :func:`assemble_mix` tries, in the order it tries them (seeded).

    Keys: ``EHD``, ``IHD``, ``MHD`` and ``NONE`` (counter-examples) in ``fdc`` mode, ``naive``
    (all harmful rows) in ``naive`` mode. With ``pair_source="dataset"`` the harmful rows are
    limited to those from HH-RLHF harmless-base, the only ones with the dataset's own answers.
    Useful to look at the first prompts of a mix before building it.
    """
    rows = pool.rows if isinstance(pool, Pool) else list(pool)
    rng = random.Random(config.seed)
    if config.pair_source == "dataset":
        # only HH-RLHF harmless prompts come with the dataset's own answers
        rows = [r for r in rows if r["category"] == "NONE" or r["source"] == "hh_rlhf_harmless"]
    if config.mode == "naive":
        return {"naive": _draw([r for r in rows if r["category"] in HARMFUL], rng)}
    order = {c: _draw([r for r in rows if r["category"] == c], rng) for c in HARMFUL}
    order["NONE"] = _draw([r for r in rows if r["category"] == "NONE"], rng)
    return order


@dataclass
class MixParts:
    """What :func:`assemble_mix` produced, before saving."""

    rows: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    tried: Counter = field(default_factory=Counter)


def assemble_mix(
    config: MixConfig,
    pool: Pool | Sequence[dict],
    respond: Responder | None,
    helpful: Sequence[dict] | None = None,
) -> MixParts:
    """The mix's pairs from a given pool and policy (no caching; :func:`build_mix` wraps it).

    Raises :class:`ShortfallError` (a ``ConfigError`` naming the category) when the pool holds
    fewer prompts of a category than asked, or too few of them pass verification.
    """
    parts = MixParts()
    order = candidate_order(config, pool)

    def safety(chunk: list[dict]) -> PairSet:
        return build_pairs(chunk, source=config.pair_source, respond=respond)

    def counter(chunk: list[dict]) -> PairSet:
        if respond is None:
            raise ConfigError("respond", "counter-examples need the policy model to answer")
        return build_counter_examples(chunk, respond=respond)

    pieces: list[PairSet] = []
    if config.mode == "fdc":
        for category, need in config.quotas().items():
            pieces.append(_fill(category, order[category], need, safety, config.oversample))
        pieces.append(
            _fill("counter_share", order["NONE"], config.counter_total, counter, config.oversample)
        )
    else:
        need = config.safety_total + config.counter_total
        pieces.append(_fill("safety_total", order["naive"], need, safety, config.oversample))
    for piece in pieces:
        parts.rows.extend(to_conversational(p) for p in piece.pairs)
        parts.dropped.update(piece.dropped)
        parts.tried.update(piece.tried)
    if helpful is None:
        helpful = helpful_pairs(config.helpful_total, config.seed)
    parts.rows.extend(to_conversational(p) for p in helpful[: config.helpful_total])
    random.Random(config.seed + 1).shuffle(parts.rows)
    return parts


def manifest_for(config: MixConfig, parts: MixParts, pool_size: int) -> dict:
    """Counts and settings of a mix (what ``manifest.json`` holds)."""
    by_cat = Counter(r["category"] for r in parts.rows)
    by_source = Counter(f"{r['category']}/{r['source']}" for r in parts.rows)
    return {
        "config": {**asdict(config), "ratio": list(config.ratio)},
        "config_key": config.key(),
        "total": len(parts.rows),
        "quotas": config.quotas() if config.mode == "fdc" else None,
        "by_category": dict(sorted(by_cat.items())),
        "by_category_source": dict(sorted(by_source.items())),
        "pairs_tried": dict(sorted(parts.tried.items())),
        "pairs_dropped": {f"{c}: {r}": n for (c, r), n in sorted(parts.dropped.items())},
        "pool_size": pool_size,
    }


def mix_folder(config: MixConfig) -> Path:
    """Where the mix of ``config`` is saved."""
    return cache_dir("fdc", "mixes", config.key())


def load_saved_mix(folder: str | Path) -> tuple[Any, dict]:
    """Read ``mix.jsonl`` and ``manifest.json`` from ``folder``."""
    from datasets import Dataset

    folder = Path(folder)
    rows = [json.loads(line) for line in (folder / "mix.jsonl").read_text().splitlines() if line]
    manifest = json.loads((folder / "manifest.json").read_text())
    return Dataset.from_list(rows), manifest


def build_mix(
    config: MixConfig,
    *,
    pool: Pool | None = None,
    respond: Responder | None = None,
    folder: str | Path | None = None,
) -> tuple[Any, dict]:
    """Build (or read back) the mix of ``config``: ``(datasets.Dataset, manifest)``.

    Args:
        config: the mix settings.
        pool: the categorized pool (default :func:`equilibrate.fdc.pool.build_pool`).
        respond: the policy (default: the ``config.profile`` model, greedy, with the generation
            cache under ``cache_dir("generations")``); only loaded when answers are needed.
        folder: where to save; default :func:`mix_folder`. An existing complete mix there is
            read back without rebuilding.

    The default folder is keyed by ``config`` alone: it assumes the default pool and the
    profile's own policy. Pass ``folder`` when building from a custom pool or policy.
    """
    from datasets import Dataset

    folder = Path(folder) if folder is not None else mix_folder(config)
    if (folder / "manifest.json").is_file() and (folder / "mix.jsonl").is_file():
        log.info("mix %s read from %s", config.key(), folder)
        return load_saved_mix(folder)
    if pool is None:
        from equilibrate.fdc.pool import build_pool

        pool = build_pool()
    needs_policy = config.pair_source != "dataset" or (
        config.mode == "fdc" and config.counter_total > 0
    )
    if respond is None and needs_policy:
        respond = default_responder(config)
    parts = assemble_mix(config, pool, respond)
    pool_size = len(pool.rows) if isinstance(pool, Pool) else len(pool)
    manifest = manifest_for(config, parts, pool_size)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "mix.jsonl", "w", encoding="utf-8") as handle:
        for row in parts.rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    manifest["files"] = {
        "mix": str(folder / "mix.jsonl"),
        "manifest": str(folder / "manifest.json"),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("mix %s: %d pairs saved to %s", config.key(), len(parts.rows), folder)
    return Dataset.from_list(parts.rows), manifest


def default_responder(config: MixConfig) -> Responder:
    """The greedy policy of ``config.profile`` with the shared generation cache."""
    from equilibrate.fdc.pairs import model_responder
    from equilibrate.generate import model_key
    from equilibrate.profiles import get_profile, load_model, load_tokenizer

    profile = get_profile(config.profile)
    tokenizer = load_tokenizer(profile)
    model = load_model(profile)
    return model_responder(
        model,
        tokenizer,
        profile,
        max_new_tokens=config.max_new_tokens,
        batch_size=profile.batch_size,
        cache=cache_dir("generations") / f"{profile.name}.jsonl",
        model_key=model_key(profile),
    )
