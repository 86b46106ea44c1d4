"""``evaluate_model``: all three axes for one model, resumable benchmark by benchmark.

For each benchmark the runner draws a seeded sample, answers it (generation goes through the
completion cache in ``<out_dir>/evaluation/generations.jsonl``), scores it and writes
``parts/<axis>__<benchmark>.json``. A part whose fingerprint (model key, sample ids and the
settings that change the outcome) matches is read back instead of recomputed, so an interrupted
evaluation resumes where it stopped and a finished one costs nothing to run again. Finally the
helpful average (mean of the benchmark accuracies, as in the paper) and the safety average (mean
of the sets' safe rates) get bootstrap intervals from the stored per-item outcomes, and all
scores go to ``results.json`` and ``results.csv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from equilibrate.errors import ConfigError, DataFormatError
from equilibrate.evaluate import helpfulness as hf
from equilibrate.evaluate.intervals import bootstrap_mean_of_means
from equilibrate.evaluate.overrefusal import overrefusal_scores
from equilibrate.evaluate.results import (
    Score,
    results_dir,
    save_results,
    score_from_row,
    score_to_json,
    scores_frame,
)
from equilibrate.evaluate.safety import (
    LLMSecondOpinion,
    apply_second_opinion,
    is_safe,
    judge_error_rate,
    safety_scores,
)
from equilibrate.evaluate.sandbox import run_python
from equilibrate.progress import progress
from equilibrate.splits import pool_split

log = logging.getLogger(__name__)

SAFETY_SETS = (
    "harmbench",
    "advbench",
    "jailbreakbench",
    "simplesafetytests",
    "do_not_answer",
    "xstest_unsafe",
    "beavertails_fdc",
)
HELPFULNESS_BENCHMARKS = hf.MC_BENCHMARKS + hf.GENERATION_BENCHMARKS + hf.CODE_BENCHMARKS
HELPFUL_AVG = "helpful_avg"
SAFETY_AVG = "safety_avg"


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate and how much of it. Sample sizes are per benchmark; ``None`` means all.

    The samples are fixed by ``seed`` (the same seed draws the same prompts for every model, so
    models are compared on identical items). ``beavertails_fdc`` is the FDC training pool and is
    left out of the default safety sets; add it only to look at scores per FDC category.
    ``run_code`` must be set for HumanEval to run (it executes model-written code in
    :mod:`equilibrate.evaluate.sandbox`); without it HumanEval is skipped with a log line.
    ``second_opinion`` sends responses the rule judge is unsure of (confidence below
    ``uncertain_below``) to the base model as a second judge (see :mod:`.safety`).
    """

    safety_sets: tuple[str, ...] = ("harmbench", "simplesafetytests", "xstest_unsafe")
    overrefusal: bool = True
    helpfulness_benchmarks: tuple[str, ...] = HELPFULNESS_BENCHMARKS
    n_safety: int | None = 50
    n_overrefusal: int | None = None
    n_multiple_choice: int | None = 100
    n_generation: int | None = 50
    n_code: int | None = 20
    seed: int = 0
    normalisation: str = "mean"
    mc_format: str = "cloze"
    mc_chat: bool = False
    mc_batch_size: int = 8
    max_length: int | None = 1024
    batch_size: int = 16
    safety_max_new_tokens: int = 128
    reasoning_max_new_tokens: int = 256
    code_max_new_tokens: int = 384
    run_code: bool = False
    code_timeout_s: float = 10.0
    second_opinion: bool = False
    uncertain_below: float = 0.5
    bootstrap_resamples: int = 2000

    def __post_init__(self) -> None:
        for name in ("safety_sets", "helpfulness_benchmarks"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ConfigError(name, f"expected a tuple of names, got the string {value!r}")
            object.__setattr__(self, name, tuple(value))
        unknown = [s for s in self.safety_sets if s not in SAFETY_SETS]
        if unknown:
            raise ConfigError("safety_sets", f"unknown {unknown}; expected some of {SAFETY_SETS}")
        unknown = [b for b in self.helpfulness_benchmarks if b not in HELPFULNESS_BENCHMARKS]
        if unknown:
            raise ConfigError(
                "helpfulness_benchmarks",
                f"unknown {unknown}; expected some of {HELPFULNESS_BENCHMARKS}",
            )
        for name in ("n_safety", "n_overrefusal", "n_multiple_choice", "n_generation", "n_code"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ConfigError(name, f"expected a positive integer or None (all), got {value!r}")
        for name in (
            "mc_batch_size",
            "batch_size",
            "safety_max_new_tokens",
            "reasoning_max_new_tokens",
            "code_max_new_tokens",
            "bootstrap_resamples",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"expected a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", f"expected a non-negative integer, got {self.seed!r}")
        if self.normalisation not in hf.NORMALISATIONS:
            raise ConfigError("normalisation", f"expected one of {hf.NORMALISATIONS}")
        if self.mc_format not in hf.MC_FORMATS:
            raise ConfigError("mc_format", f"expected one of {hf.MC_FORMATS}")
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(
                "max_length", f"expected at least 8 tokens or None, got {self.max_length}"
            )
        if not 0.0 <= self.uncertain_below <= 1.0:
            raise ConfigError(
                "uncertain_below", f"expected a number in [0, 1], got {self.uncertain_below}"
            )
        if self.code_timeout_s <= 0:
            raise ConfigError("code_timeout_s", f"expected seconds > 0, got {self.code_timeout_s}")

    @classmethod
    def for_profile(cls, profile: Any, **overrides: Any) -> EvalSettings:
        """Defaults sized for a profile: small samples on ``cpu``, paper-sized ones on a GPU.

        On a GPU profile the second-opinion judge is on; HumanEval still needs ``run_code=True``.
        """
        name = getattr(profile, "name", profile)
        if name == "cpu":
            base: dict[str, Any] = dict(
                n_safety=20, n_overrefusal=50, n_multiple_choice=50, n_generation=20, n_code=10
            )
        else:
            base = dict(
                n_safety=200,
                n_overrefusal=None,
                n_multiple_choice=500,
                n_generation=250,
                n_code=None,
                second_opinion=True,
                batch_size=32,
            )
        names = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise ConfigError(bad[0], "is not an EvalSettings field")
        base.update(overrides)
        return cls(**base)


@dataclass
class EvalResults:
    """Everything ``evaluate_model`` measured, and where it was stored."""

    model: str
    scores: list[Score]
    out_dir: Path
    reused: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The scores as a DataFrame (columns of :data:`equilibrate.evaluate.results.COLUMNS`)."""
        return scores_frame(self.scores)


# ---------------------------------------------------------------------------------------------
# Helpers


def sample_rows(rows: Sequence[Mapping[str, Any]], n: int | None, seed: int, name: str) -> list:
    """``n`` rows drawn without replacement by ``random.Random(f"{seed}/{name}")``, in file order.

    All rows when ``n`` is ``None`` or not smaller than the set.
    """
    rows = list(rows)
    if n is None or n >= len(rows):
        return rows
    picked = sorted(random.Random(f"{seed}/{name}").sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def fingerprint(payload: Mapping[str, Any]) -> str:
    """sha256 (hex, 16 characters) of a JSON-serialisable description of a benchmark run."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def part_path(out_dir: str | Path, axis: str, benchmark: str) -> Path:
    """Where the result of one benchmark is stored."""
    return results_dir(out_dir) / "parts" / f"{axis}__{benchmark}.json"


def read_part(path: Path) -> dict[str, Any]:
    """A stored benchmark part, validated (its scores and items)."""
    try:
        part = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataFormatError(path, None, None, f"not valid JSON ({err})") from None
    for key in ("axis", "benchmark", "model", "fingerprint", "scores", "items"):
        if key not in part:
            raise DataFormatError(path, None, key, "field is missing")
    part["scores"] = [score_from_row(r, path, i) for i, r in enumerate(part["scores"], start=1)]
    if not isinstance(part["items"], list):
        raise DataFormatError(path, None, "items", "expected a list of per-item records")
    return part


def write_part(path: Path, part: dict[str, Any]) -> None:
    """Write a part atomically (a killed run never leaves half a file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(part, scores=[score_to_json(s) for s in part["scores"]])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def load_benchmark_rows(name: str, load_fn: Callable[[str], list[dict]]) -> list[dict]:
    """Rows of an evaluation set; ``xstest_safe``/``xstest_unsafe`` are XSTest split by label."""
    if name in ("xstest_safe", "xstest_unsafe"):
        label = name.split("_")[1]
        return [r for r in load_fn("xstest") if r.get("label") == label]
    rows = load_fn(name)
    if name in ("advbench", "harmbench"):
        # Only the evaluation half: the other half may be training data (equilibrate.splits).
        rows = [r for r in rows if pool_split(name, r) == "eval"]
    if name == "beavertails_fdc":  # its prompts carry the FDC category under 'category'
        rows = [dict(r, fdc_category=r.get("category")) for r in rows]
    return rows


# ---------------------------------------------------------------------------------------------
# The orchestrator


class _Evaluation:
    """The state of one ``evaluate_model`` call (kept in one place so each step stays short)."""

    def __init__(
        self,
        model,
        tokenizer,
        profile,
        settings,
        out_dir,
        model_key,
        model_name,
        generate_fn,
        judge_fn,
        load_fn,
        judge_report,
        categorizer,
    ) -> None:
        self.model, self.tokenizer, self.profile = model, tokenizer, profile
        self.settings: EvalSettings = settings
        self.out_dir = Path(out_dir)
        self.model_key, self.model_name = model_key, model_name
        self.generate_fn, self.judge_fn, self.load_fn = generate_fn, judge_fn, load_fn
        self._judge_report = judge_report
        self._judge_error: float | None = None
        self.categorizer = categorizer
        self.cache = results_dir(out_dir) / "generations.jsonl"
        self.also_read: tuple[Path, ...] = ()
        self.reused: list[str] = []
        self.computed: list[str] = []

    # -- shared pieces

    def judge_error(self) -> float | None:
        if self._judge_error is None:
            report = self._judge_report
            if report is None:
                from equilibrate.judge import validate_judge

                report = validate_judge()
            self._judge_error = judge_error_rate(report)
        return self._judge_error

    def generate(
        self, prompts: list[str], max_new_tokens: int, key: str | None = None
    ) -> list[str]:
        from equilibrate.generate import GenerationSettings

        gen_settings = GenerationSettings(
            max_new_tokens=max_new_tokens, batch_size=self.settings.batch_size
        )
        extra = {"also_read": self.also_read} if self.also_read and key is None else {}
        return self.generate_fn(
            self.model,
            self.tokenizer,
            prompts,
            gen_settings,
            profile=self.profile,
            cache=self.cache,
            model_key=key or self.model_key,
            **extra,
        )

    def second_opinion(self) -> LLMSecondOpinion | None:
        if not self.settings.second_opinion:
            return None

        def ask(questions: list[str]) -> list[str]:
            disable = getattr(self.model, "disable_adapter", None)
            if disable is None:
                return self.generate(questions, 8, key=f"second-opinion:{self.model_key}")
            with disable():  # judge with the base model, not the one being evaluated
                return self.generate(questions, 8, key=f"second-opinion-base:{self.model_key}")

        return LLMSecondOpinion(ask)

    def run_part(
        self,
        axis: str,
        benchmark: str,
        rows: list[dict],
        extra: dict,
        compute: Callable[[list[dict]], tuple[list[Score], list[dict]]],
    ) -> list[Score]:
        """Reuse the stored part when its fingerprint matches, else compute and store it."""
        path = part_path(self.out_dir, axis, benchmark)
        key = fingerprint(
            {
                "axis": axis,
                "benchmark": benchmark,
                "model_key": self.model_key,
                "ids": [str(r["id"]) for r in rows],
                "settings": extra,
            }
        )
        if path.is_file():
            part = read_part(path)
            if part["fingerprint"] == key:
                log.info("%s/%s: reusing %s", axis, benchmark, path)
                self.reused.append(benchmark)
                return [s.with_model(self.model_name) for s in part["scores"]]
            log.info(
                "%s/%s: stored part was made with other settings; recomputing", axis, benchmark
            )
        start = time.perf_counter()
        scores, items = compute(rows)
        scores = [s.with_model(self.model_name) for s in scores]
        write_part(
            path,
            {
                "axis": axis,
                "benchmark": benchmark,
                "model": self.model_name,
                "model_key": self.model_key,
                "fingerprint": key,
                "settings": extra,
                "seconds": round(time.perf_counter() - start, 2),
                "scores": scores,
                "items": items,
            },
        )
        self.computed.append(benchmark)
        head = scores[0]
        log.info(
            "%s/%s: %s = %.3f [%.3f, %.3f] on %d items (%.0fs)",
            axis,
            benchmark,
            head.metric,
            head.value,
            head.ci_low,
            head.ci_high,
            head.n,
            time.perf_counter() - start,
        )
        return scores

    # -- judged axes

    def judged(self, rows: list[dict]) -> tuple[list[str], list[dict]]:
        """Generate, judge (with the optional second opinion); labels and per-item records."""
        prompts = [str(r["prompt"]) for r in rows]
        responses = self.generate(prompts, self.settings.safety_max_new_tokens)
        verdicts = [self.judge_fn(p, r) for p, r in zip(prompts, responses, strict=True)]
        relabelled = apply_second_opinion(
            prompts,
            responses,
            [v.label for v in verdicts],
            [v.score for v in verdicts],
            self.second_opinion(),
            self.settings.uncertain_below,
        )
        items = [
            {
                "id": str(r["id"]),
                "prompt": p,
                "response": resp,
                "rule_label": v.label,
                "rule_score": v.score,
                "reviewed": rev,
                "label": lab,
            }
            for r, p, resp, v, lab, rev in zip(
                rows,
                prompts,
                responses,
                verdicts,
                relabelled.labels,
                relabelled.reviewed,
                strict=True,
            )
        ]
        return relabelled.labels, items

    def judged_extra(self) -> dict:
        s = self.settings
        return {
            "max_new_tokens": s.safety_max_new_tokens,
            "second_opinion": s.second_opinion,
            "uncertain_below": s.uncertain_below if s.second_opinion else None,
            "judge_error": self.judge_error(),
        }

    def safety(self, name: str) -> list[Score]:
        rows = sample_rows(
            load_benchmark_rows(name, self.load_fn),
            self.settings.n_safety,
            self.settings.seed,
            name,
        )
        if self.categorizer is not None and not any("fdc_category" in r for r in rows):
            found = self.categorizer.categorize([str(r["prompt"]) for r in rows])
            rows = [dict(r, fdc_category=c.category) for r, c in zip(rows, found, strict=True)]

        def compute(rows: list[dict]) -> tuple[list[Score], list[dict]]:
            labels, items = self.judged(rows)
            for item, label in zip(items, labels, strict=True):
                item["correct"] = int(is_safe(label))  # 'correct' = safe, for the average
            return safety_scores(name, rows, labels, self.judge_error()), items

        return self.run_part("safety", name, rows, self.judged_extra(), compute)

    def overrefusal(self) -> list[Score]:
        name = "xstest_safe"
        rows = sample_rows(
            load_benchmark_rows(name, self.load_fn),
            self.settings.n_overrefusal,
            self.settings.seed,
            name,
        )

        def compute(rows: list[dict]) -> tuple[list[Score], list[dict]]:
            labels, items = self.judged(rows)
            for item, label in zip(items, labels, strict=True):
                item["correct"] = int(label == "full_compliance")
            return overrefusal_scores(rows, labels, self.judge_error(), name), items

        return self.run_part("overrefusal", name, rows, self.judged_extra(), compute)

    # -- helpfulness

    def helpfulness(self, name: str) -> list[Score]:
        s = self.settings
        if name in hf.CODE_BENCHMARKS and not s.run_code:
            log.info("humaneval skipped: it runs model-written code; set run_code=True to allow it")
            return []
        n = {
            **{b: s.n_multiple_choice for b in hf.MC_BENCHMARKS},
            **{b: s.n_generation for b in hf.GENERATION_BENCHMARKS},
            "humaneval": s.n_code,
        }[name]
        rows = sample_rows(self.load_fn(name), n, s.seed, name)
        if name in hf.MC_BENCHMARKS:
            extra = {
                "normalisation": s.normalisation,
                "format": s.mc_format,
                "chat": s.mc_chat,
                "max_length": s.max_length,
            }
            return self.run_part("helpfulness", name, rows, extra, self._mc(name))
        if name in hf.GENERATION_BENCHMARKS:
            extra = {
                "max_new_tokens": s.reasoning_max_new_tokens,
                "prompt": hf.GSM8K_PROMPT if name == "gsm8k" else hf.BBH_PROMPT,
            }
            return self.run_part("helpfulness", name, rows, extra, self._exact_match(name))
        extra = {
            "max_new_tokens": s.code_max_new_tokens,
            "prompt": hf.HUMANEVAL_PROMPT,
            "timeout_s": s.code_timeout_s,
        }
        return self.run_part("helpfulness", name, rows, extra, self._code)

    def _mc(self, name: str) -> Callable[[list[dict]], tuple[list[Score], list[dict]]]:
        def compute(rows: list[dict]) -> tuple[list[Score], list[dict]]:
            s = self.settings
            out = hf.score_multiple_choice(
                self.model,
                self.tokenizer,
                rows,
                name,
                s.normalisation,
                s.mc_format,
                s.mc_chat,
                s.mc_batch_size,
                s.max_length,
            )
            return out.scores, out.items

        return compute

    def _exact_match(self, name: str) -> Callable[[list[dict]], tuple[list[Score], list[dict]]]:
        def compute(rows: list[dict]) -> tuple[list[Score], list[dict]]:
            make = hf.gsm8k_prompt if name == "gsm8k" else hf.bbh_prompt
            read = hf.extract_number if name == "gsm8k" else None
            responses = self.generate(
                [make(r) for r in rows], self.settings.reasoning_max_new_tokens
            )
            items = []
            for row, response in zip(rows, responses, strict=True):
                gold = str(row["answer"])
                if name == "gsm8k":
                    ok, found = hf.gsm8k_correct(response, gold), read(response)
                else:
                    ok, found = (
                        hf.bbh_correct(response, gold),
                        hf.extract_bbh_answer(response, gold),
                    )
                items.append(
                    {
                        "id": str(row["id"]),
                        "task": row.get("task"),
                        "answer": gold,
                        "extracted": found,
                        "correct": int(ok),
                        "response": response,
                    }
                )
            scores = [hf.accuracy_score(name, "accuracy", [i["correct"] for i in items])]
            if name == "bbh":
                for task in sorted({str(i["task"]) for i in items}):
                    hits = [i["correct"] for i in items if str(i["task"]) == task]
                    scores.append(hf.accuracy_score(name, f"accuracy[task={task}]", hits))
            return scores, items

        return compute

    def _code(self, rows: list[dict]) -> tuple[list[Score], list[dict]]:
        responses = self.generate(
            [hf.humaneval_prompt(r) for r in rows], self.settings.code_max_new_tokens
        )
        items = []
        for row, response in progress(list(zip(rows, responses, strict=True)), desc="humaneval"):
            t = self.settings.code_timeout_s
            result = run_python(
                hf.humaneval_program(row, response), timeout_s=t, cpu_seconds=max(1, int(t))
            )
            items.append(
                {
                    "id": str(row["id"]),
                    "status": result.status,
                    "correct": int(result.passed),
                    "response": response,
                    "stderr": result.stderr[-1000:],
                }
            )
        return [hf.accuracy_score("humaneval", "pass@1", [i["correct"] for i in items])], items

    # -- averages

    def average(self, axis: str, benchmarks: Sequence[str], name: str, metric: str) -> Score | None:
        groups = []
        for benchmark in benchmarks:
            path = part_path(self.out_dir, axis, benchmark)
            if path.is_file():
                groups.append([int(i["correct"]) for i in read_part(path)["items"]])
        if not groups:
            return None
        est = bootstrap_mean_of_means(groups, self.settings.bootstrap_resamples, self.settings.seed)
        judge = self.judge_error() if axis == "safety" else None
        return Score(
            axis, name, metric, est.value, est.ci_low, est.ci_high, est.n, judge, self.model_name
        )


def evaluate_model(
    model: Any,
    tokenizer: Any,
    profile: Any,
    settings: EvalSettings | None,
    out_dir: str | Path,
    model_key: str,
    *,
    model_name: str | None = None,
    generate_fn: Callable[..., list[str]] | None = None,
    judge_fn: Callable[[str, str], Any] | None = None,
    load_fn: Callable[[str], list[dict]] | None = None,
    judge_report: Any = None,
    categorizer: Any = None,
    also_read: Sequence[str | Path] = (),
) -> EvalResults:
    """Evaluate one model on safety, over-refusal and helpfulness; store and return every score.

    Args:
        model, tokenizer, profile: as loaded by :mod:`equilibrate.profiles`.
        settings: what to run (default :meth:`EvalSettings.for_profile`).
        out_dir: the run directory; results go to ``<out_dir>/evaluation/``.
        model_key: names the model in the generation cache and in the parts' fingerprints; use
            ``equilibrate.generate.model_key(profile, adapter)``.
        model_name: the name in the results table (default ``model_key``).
        generate_fn, judge_fn, load_fn: replace ``equilibrate.generate.generate``,
            ``equilibrate.judge.judge_response`` and ``equilibrate.data.load`` (tests use this).
        judge_report: the judge's measured quality (``JudgeReport``, a mapping or an error rate);
            default: ``equilibrate.judge.validate_judge()`` on labelled XSTest completions.
        categorizer: an optional FDC categorizer (``.categorize(prompts)``) whose categories split
            the safety scores (``safe_rate[fdc_category=EHD]``...).
        also_read: other generation caches of the same model to take answers from (read only;
            see :func:`equilibrate.generate.generate`).

    Returns:
        :class:`EvalResults`; the same scores are in ``results.json`` and ``results.csv``.
    """
    if generate_fn is None:
        from equilibrate.generate import generate as generate_fn
    if judge_fn is None:
        from equilibrate.judge import judge_response as judge_fn
    if load_fn is None:
        from equilibrate.data import load as load_fn
    settings = settings or EvalSettings.for_profile(profile)
    name = model_name or model_key
    run = _Evaluation(
        model,
        tokenizer,
        profile,
        settings,
        out_dir,
        model_key,
        name,
        generate_fn,
        judge_fn,
        load_fn,
        judge_report,
        categorizer,
    )
    run.also_read = tuple(Path(p) for p in also_read)
    scores: list[Score] = []
    for set_name in settings.safety_sets:
        scores += run.safety(set_name)
    if settings.overrefusal:
        scores += run.overrefusal()
    for benchmark in settings.helpfulness_benchmarks:
        scores += run.helpfulness(benchmark)
    averages = [
        run.average("safety", settings.safety_sets, SAFETY_AVG, "mean_safe_rate"),
        run.average("helpfulness", settings.helpfulness_benchmarks, HELPFUL_AVG, "mean_accuracy"),
    ]
    scores += [a for a in averages if a is not None]
    save_results(scores, out_dir)
    meta = {
        "model": name,
        "model_key": model_key,
        "profile": getattr(profile, "name", str(profile)),
        "settings": asdict(settings),
        "judge_error": run._judge_error,
        "reused": run.reused,
        "computed": run.computed,
    }
    (results_dir(out_dir) / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    summary = {s.benchmark: s.value for s in scores if s.benchmark in (SAFETY_AVG, HELPFUL_AVG)}
    log.info(
        "evaluated %s: %d scores (%d benchmarks computed, %d reused); %s",
        name,
        len(scores),
        len(run.computed),
        len(run.reused),
        ", ".join(f"{k} {v:.3f}" for k, v in summary.items()) or "no averages",
    )
    return EvalResults(name, scores, Path(out_dir), run.reused, run.computed)
