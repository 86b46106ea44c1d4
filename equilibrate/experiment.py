"""The equilibrium experiment: the paper's comparison, rerun at a scale one machine affords.

Five models, one seed, the same recipe and the same number of optimizer steps per training example
(two epochs each):

| arm | training data |
|---|---|
| ``base`` | none: the profile's model as shipped |
| ``naive-small`` | ``safety_small`` safety pairs drawn regardless of category, plus helpful pairs |
| ``naive-large`` | ``scale`` times as many naive safety pairs, the same helpful pairs |
| ``fdc`` | ``safety_small`` pairs by FDC quota (EHD:IHD:MHD = 10:3:1), counter-examples, helpful |
| ``fdc-ama`` | the ``fdc`` data, trained with AMA-DPO (segment scorer) instead of DPO |

``naive-small`` and ``fdc`` spend the same pair budget: the naive mix draws its counter-example
share as further safety pairs (see :class:`equilibrate.fdc.MixConfig`). Each arm is a
content-addressed training run (:func:`equilibrate.train.train_run`), so chapter 3, which trains
``fdc`` and ``fdc-ama`` to compare DPO with AMA-DPO, and chapter 5, which trains and evaluates all
of them, share the adapters. Evaluation results land in each run directory and are reused too.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError
from equilibrate.paths import cache_dir

logger = logging.getLogger(__name__)

ARMS = ("base", "naive-small", "naive-large", "fdc", "fdc-ama")
TRAINED_ARMS = ARMS[1:]

#: Sample sizes for the book's CPU build; larger on a GPU (see ``book_eval_settings``).
CPU_EVAL = dict(
    safety_sets=("advbench", "harmbench", "jailbreakbench", "simplesafetytests", "xstest_unsafe"),
    n_safety=24,
    n_overrefusal=150,
    helpfulness_benchmarks=("mmlu", "arc_easy", "arc_challenge", "commonsenseqa", "winogrande",
                            "truthfulqa_mc1", "gsm8k", "bbh"),
    n_multiple_choice=32,
    n_generation=16,
    safety_max_new_tokens=64,
    reasoning_max_new_tokens=128,
)


@dataclass(frozen=True)
class ExperimentSettings:
    """What the experiment trains and evaluates.

    Attributes:
        recipe: a recipe name in ``recipes/`` (``cpu``) or a path to a YAML recipe.
        safety_small: safety pairs of the smaller budget (naive-small and fdc).
        scale: the larger naive budget as a multiple of the smaller one (the issue: about 4).
        helpful_share: general helpful pairs as a share of ``safety_small`` (all arms).
        counter_share: counter-examples as a share of ``safety_small`` (fdc arms; naive arms
            spend the same budget on more safety pairs).
        pair_source: how safety pairs get their answers (``equilibrate.fdc.PAIR_SOURCES``).
        scorer: the AMA scorer of ``fdc-ama``.
        seed: one seed for mixes, training and evaluation samples.
        epochs: passes over each arm's data; steps = ceil(pairs * epochs / batch size).
        batch_size: overrides the recipe's batch size (pairs per optimizer step) when set; on a
            fixed compute budget a smaller batch gives each arm more optimizer steps.
        learning_rate: overrides the recipe's learning rate when set.
        sft_weight: overrides the recipe's ``method.sft_weight`` (the weight of the chosen
            answers' negative log-likelihood added to the DPO loss) when set.
        eval_overrides: changes to the evaluation settings (``EvalSettings`` fields).
    """

    recipe: str = "cpu"
    safety_small: int = 40
    scale: int = 4
    helpful_share: float = 0.5
    counter_share: float = 0.125
    pair_source: str = "templated"
    scorer: str = "segment"
    seed: int = 0
    epochs: int = 2
    batch_size: int | None = None
    learning_rate: float | None = 1.5e-3
    sft_weight: float | None = 1.0
    eval_overrides: dict = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.safety_small, int) or self.safety_small < 1:
            raise ConfigError(
                "safety_small", f"expected a positive integer, got {self.safety_small!r}"
            )
        if not isinstance(self.scale, int) or self.scale < 2:
            raise ConfigError("scale", f"expected an integer >= 2, got {self.scale!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError("epochs", f"expected a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ConfigError("batch_size", f"expected a positive integer, got {self.batch_size!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError("learning_rate", f"expected a number > 0, got {self.learning_rate!r}")


def _check_arm(arm: str) -> None:
    if arm not in ARMS:
        raise ConfigError("arm", f"expected one of {ARMS}, got {arm!r}")


def recipe_path(recipe: str) -> Path:
    """The YAML file of a recipe name (``cpu`` -> ``<repo>/recipes/cpu.yaml``) or a path."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError("recipe", f"recipe file not found: {path}")
        return path
    from equilibrate.train.recipes import repository_recipes

    for candidate in repository_recipes():
        if candidate.stem == recipe:
            return candidate
    raise ConfigError("recipe", f"no recipe named {recipe!r} in the repository's recipes/ folder")


def mix_config(arm: str, settings: ExperimentSettings):
    """The :class:`equilibrate.fdc.MixConfig` of a trained arm."""
    from equilibrate.fdc.mix import MixConfig

    _check_arm(arm)
    if arm == "base":
        raise ConfigError("arm", "the base model has no training mix")
    small = settings.safety_small
    total = small * settings.scale if arm == "naive-large" else small
    # The large naive arm keeps the small arms' helpful pairs (same count, not scaled).
    helpful = settings.helpful_share * small / total
    return MixConfig(
        safety_total=total,
        helpful_share=helpful,
        counter_share=settings.counter_share,
        mode="naive" if arm.startswith("naive") else "fdc",
        pair_source=settings.pair_source,
        seed=settings.seed,
    )


def arm_data(arm: str, settings: ExperimentSettings):
    """``(datasets.Dataset, manifest)`` of a trained arm (built once, then read from the cache)."""
    from equilibrate.fdc.mix import build_mix

    return build_mix(mix_config(arm, settings))


def arm_recipe(arm: str, settings: ExperimentSettings, n_pairs: int):
    """The training recipe of an arm: the base recipe with method, steps and seed set."""
    from equilibrate.train.recipes import Recipe

    base = Recipe.load(recipe_path(settings.recipe))
    batch = settings.batch_size or base.hyperparameters.batch_size
    steps = max(1, math.ceil(n_pairs * settings.epochs / batch))
    changes: dict[str, Any] = {
        "name": f"{base.name}-{arm}",
        "method.name": "ama-dpo" if arm == "fdc-ama" else "dpo",
        "hyperparameters.max_steps": steps,
        "hyperparameters.seed": settings.seed,
    }
    if settings.batch_size is not None:
        changes["hyperparameters.batch_size"] = settings.batch_size
        changes["hardware.micro_batch_size"] = min(settings.batch_size,
                                                   base.hardware.micro_batch_size)
    if settings.learning_rate is not None:
        changes["hyperparameters.learning_rate"] = settings.learning_rate
    if settings.sft_weight is not None:
        changes["method.sft_weight"] = settings.sft_weight
    if arm == "fdc-ama":
        changes["method.ama.scorer"] = settings.scorer
    return base.replace(changes)


def train_arm(arm: str, settings: ExperimentSettings | None = None):
    """Train one arm (or return its finished run): a :class:`equilibrate.train.RunResult`."""
    from equilibrate.train import train_run

    settings = settings or ExperimentSettings()
    _check_arm(arm)
    if arm == "base":
        raise ConfigError("arm", "the base model is not trained")
    dataset, _ = arm_data(arm, settings)
    recipe = arm_recipe(arm, settings, len(dataset))
    result = train_run(recipe, dataset)
    logger.info("%s: %s", arm, result.summary_line())
    return result


def book_eval_settings(profile, settings: ExperimentSettings | None = None):
    """Evaluation settings: the CPU sample sizes on ``cpu``, the profile's defaults elsewhere."""
    from equilibrate.evaluate import EvalSettings

    settings = settings or ExperimentSettings()
    name = getattr(profile, "name", profile)
    overrides = dict(CPU_EVAL) if name == "cpu" else {}
    overrides.update(seed=settings.seed, **settings.eval_overrides)
    return EvalSettings.for_profile(profile, **overrides)


def base_run_dir(profile, seed: int = 0) -> Path:
    """Where the base model's evaluation under ``seed`` is stored (a pseudo run directory; one per
    seed, since the seed draws the evaluation sample)."""
    name = f"base-{getattr(profile, 'name', profile)}"
    return cache_dir("runs", name if seed == 0 else f"{name}-seed{seed}")


def evaluate_arm(arm: str, settings: ExperimentSettings | None = None, profile=None, run=None):
    """Evaluate one arm on the three axes; reuses stored results. Returns ``EvalResults``."""
    from equilibrate import profiles
    from equilibrate.evaluate import evaluate_model
    from equilibrate.generate import model_key

    settings = settings or ExperimentSettings()
    trained_on = experiment_profile(settings)
    name = getattr(profile, "name", profile) if profile is not None else trained_on
    if name != trained_on:
        raise ConfigError(
            "profile",
            f"the experiment's recipe {settings.recipe!r} trains the {trained_on!r} profile; "
            f"evaluating it as {name!r} would put its adapters on another model. Pass no profile, "
            f"or choose a recipe for {name!r} (ExperimentSettings(recipe=...))",
        )
    profile = profiles.get_profile(trained_on)
    adapter, also_read = None, ()
    if arm == "base":
        out_dir = base_run_dir(profile, settings.seed)
        # Chapter 1 answered XSTest with the same model and settings: take those answers.
        from equilibrate.diagnose import default_cache

        also_read = (default_cache(model_key(profile)),)
    else:
        run = run or train_arm(arm, settings)
        adapter, out_dir = run.adapter_dir, run.run_dir
    tokenizer = profiles.load_tokenizer(profile)
    model = profiles.load_model(profile, adapter=adapter)
    return evaluate_model(model, tokenizer, profile, book_eval_settings(profile, settings),
                          out_dir, model_key(profile, adapter), model_name=arm,
                          also_read=also_read)


def experiment_profile(settings: ExperimentSettings | None = None) -> str:
    """The profile (model) the experiment's recipe trains, and so the one it evaluates."""
    from equilibrate.train.recipes import Recipe

    settings = settings or ExperimentSettings()
    return Recipe.load(recipe_path(settings.recipe)).model.profile


@dataclass
class ArmResult:
    """One arm's run (``None`` for the base model), evaluation and training-data manifest."""

    arm: str
    run: Any
    evaluation: Any
    manifest: dict | None


def run_experiment(settings: ExperimentSettings | None = None, arms: tuple[str, ...] = ARMS,
                   ) -> dict[str, ArmResult]:
    """Train and evaluate every arm in ``arms`` (each step reused when already done)."""
    settings = settings or ExperimentSettings()
    out: dict[str, ArmResult] = {}
    for arm in arms:
        _check_arm(arm)
        run = manifest = None
        if arm != "base":
            _, manifest = arm_data(arm, settings)
            run = train_arm(arm, settings)
        evaluation = evaluate_arm(arm, settings, run=run)
        out[arm] = ArmResult(arm, run, evaluation, manifest)
        logger.info("experiment: %s evaluated (%d scores)", arm, len(evaluation.scores))
    return out


def settings_dict(settings: ExperimentSettings) -> dict:
    """Plain-dict view of the settings (for manifests and tables)."""
    return asdict(settings)


def with_seed(settings: ExperimentSettings, seed: int) -> ExperimentSettings:
    """The same experiment under another seed."""
    return replace(settings, seed=seed)


# ---------------------------------------------------------------------------------------------
# Reading the results: the three headline numbers per model and the paper's findings checked


HEADLINE_METRICS = {
    "safety": ("safety_avg", "mean_safe_rate"),
    "over_refusal_compliance": ("xstest_safe", "compliance"),
    "helpfulness": ("helpful_avg", "mean_accuracy"),
}


def headline(frame) -> Any:
    """One row per model: each headline number with its 95% interval (fractions).

    ``frame`` is a scores DataFrame (``equilibrate.evaluate.scores_frame``). Columns: for each
    of ``safety``, ``over_refusal_compliance``, ``helpfulness`` the value and ``_lo``/``_hi``.
    """
    import pandas as pd

    rows = {}
    for model, sub in frame.groupby("model", sort=False):
        row = {}
        for name, (benchmark, metric) in HEADLINE_METRICS.items():
            hit = sub[(sub["benchmark"] == benchmark) & (sub["metric"] == metric)]
            if hit.empty:
                row.update({name: float("nan"), f"{name}_lo": float("nan"),
                            f"{name}_hi": float("nan")})
                continue
            first = hit.iloc[0]
            row.update({name: first["value"], f"{name}_lo": first["ci_low"],
                        f"{name}_hi": first["ci_high"]})
        rows[model] = row
    return pd.DataFrame.from_dict(rows, orient="index")


#: The paper's findings as comparisons: (finding, model a, model b, quantity, a should be ...).
FINDINGS = (
    ("4x more naive safety data raises safety", "naive-large", "naive-small", "safety", "higher"),
    ("4x more naive safety data raises over-refusal (fewer safe prompts answered)",
     "naive-large", "naive-small", "over_refusal_compliance", "lower"),
    ("naive safety data costs helpfulness", "naive-large", "base", "helpfulness", "lower"),
    ("FDC data is safer than naive data of the same size", "fdc", "naive-small", "safety",
     "higher"),
    ("FDC data over-refuses less than 4x naive data", "fdc", "naive-large",
     "over_refusal_compliance", "higher"),
    ("FDC + AMA keeps helpfulness", "fdc-ama", "base", "helpfulness", "not lower"),
    ("AMA adds safety over DPO on the same FDC data", "fdc-ama", "fdc", "safety", "higher"),
    ("AMA over-refuses no more than DPO on the same data", "fdc-ama", "fdc",
     "over_refusal_compliance", "not lower"),
)


def _verdict(a: dict, b: dict, quantity: str, expect: str) -> str:
    va, vb = a[quantity], b[quantity]
    if va != va or vb != vb:  # NaN: not measured
        return "not measured"
    apart = a[f"{quantity}_lo"] > b[f"{quantity}_hi"] or b[f"{quantity}_lo"] > a[f"{quantity}_hi"]
    if expect == "higher":
        right = va > vb
    elif expect == "lower":
        right = va < vb
    else:  # "not lower"
        right = va >= vb or not apart
        return "reproduced" if right else "not reproduced"
    if right and apart:
        return "reproduced"
    if right:
        return "same direction, within noise"
    if apart:
        return "not reproduced"
    return "opposite direction, within noise"


def findings(frame) -> Any:
    """Each of the paper's findings (:data:`FINDINGS`) checked on our scores.

    Verdicts: ``reproduced`` (right direction, 95% intervals apart), ``same direction, within
    noise`` (intervals overlap), ``opposite direction, within noise``, ``not reproduced``
    (opposite direction, intervals apart), ``not measured``. For "not lower" findings, overlap
    counts as reproduced.
    """
    import pandas as pd

    table = headline(frame)
    out = []
    for text, a, b, quantity, expect in FINDINGS:
        if a not in table.index or b not in table.index:
            out.append({"finding": text, "compares": f"{a} vs {b}", "ours": "",
                        "verdict": "not measured"})
            continue
        ra, rb = table.loc[a].to_dict(), table.loc[b].to_dict()
        out.append({
            "finding": text,
            "compares": f"{a} vs {b} ({quantity.replace('_', ' ')})",
            "ours": f"{ra[quantity]:.3f} vs {rb[quantity]:.3f}",
            "verdict": _verdict(ra, rb, quantity, expect),
        })
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# Further seeds: results exported to a file, read back beside the build's own seed

#: What an exported results file holds, by version.
EXPORT_VERSION = 1


def machine_description() -> dict:
    """The machine and software that produced a result (for exported results files)."""
    import os
    import platform

    import torch
    import transformers
    import trl

    from equilibrate.train.trainer import CPUINFO, cpu_has_native_bf16

    cpu = platform.processor() or "unknown"
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def export_results(results: dict[str, ArmResult], settings: ExperimentSettings,
                   path: str | Path, *, seconds: float | None = None) -> Path:
    """Write every arm's scores, the settings and the machine to one JSON file (atomically)."""
    import datetime
    import json

    from equilibrate._files import write_text_atomically

    scores = [
        {**asdict(s), "model": arm} for arm, r in results.items() for s in r.evaluation.scores
    ]
    payload = {
        "version": EXPORT_VERSION,
        "what": "equilibrium experiment results (equilibrate.experiment.export_results)",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": machine_description(),
        "seconds": None if seconds is None else round(seconds),
        "settings": settings_dict(settings),
        "eval_settings": eval_settings_dict(settings),
        "scores": scores,
    }
    return write_text_atomically(path, json.dumps(payload, indent=1, default=str) + "\n")


def load_exported(path: str | Path) -> tuple[dict, Any]:
    """``(meta, scores DataFrame)`` of a file written by :func:`export_results`.

    Raises:
        DataFormatError: the file is not such a file; names the file, the entry and the field.
    """
    import json

    import pandas as pd

    from equilibrate.errors import DataFormatError

    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, None, f"not valid JSON ({err.msg})") from None
    if not isinstance(payload, dict):
        raise DataFormatError(path, None, None, "expected a JSON object")
    for name in ("version", "machine", "settings", "scores"):
        if name not in payload:
            raise DataFormatError(path, None, name, "missing")
    if payload["version"] != EXPORT_VERSION:
        raise DataFormatError(path, None, "version",
                              f"expected {EXPORT_VERSION}, got {payload['version']!r}")
    needed = ("model", "benchmark", "metric", "value", "ci_low", "ci_high")
    for i, score in enumerate(payload["scores"], start=1):
        missing = [k for k in needed if not isinstance(score, dict) or k not in score]
        if missing:
            raise DataFormatError(path, i, f"scores.{missing[0]}",
                                  f"score record {i} lacks it")
    meta = {k: v for k, v in payload.items() if k != "scores"}
    return meta, pd.DataFrame(payload["scores"])


def eval_settings_dict(settings: ExperimentSettings) -> dict:
    """The evaluation settings the experiment uses, as they read back from JSON."""
    return json_roundtrip(asdict(book_eval_settings(experiment_profile(settings), settings)))


def same_experiment(a: dict, b: dict) -> list[str]:
    """The settings (as dicts) in which two experiments differ, apart from the seed."""
    keys = sorted((set(a) | set(b)) - {"seed"})
    return [k for k in keys if a.get(k) != b.get(k)]


def seed_spread(frames: dict[int, Any]) -> Any:
    """Headline numbers per arm and seed, with their range across seeds.

    ``frames`` maps a seed to its scores DataFrame. Returns one row per (model, quantity) with a
    column per seed, ``min``, ``max`` and ``spread`` (max - min).
    """
    import pandas as pd

    columns = {}
    for seed, frame in sorted(frames.items()):
        head = headline(frame)[list(HEADLINE_METRICS)]
        columns[f"seed {seed}"] = head.stack()
    table = pd.DataFrame(columns)
    table.index.names = ["model", "quantity"]
    values = table.astype(float)
    table["min"], table["max"] = values.min(axis=1), values.max(axis=1)
    table["spread"] = table["max"] - table["min"]
    return table


def exported_seeds(settings: ExperimentSettings, folder: str | Path,
                   ) -> tuple[dict[int, Any], list[str]]:
    """Other seeds of the same experiment, read from ``folder/experiment-seed*.json``.

    Returns ``({seed: scores DataFrame}, notes)``: files whose settings differ from ``settings`` in
    anything but the seed, or whose seed is ``settings.seed``, are left out, and ``notes`` says
    which and why, next to where each kept file came from (date, machine, time taken).
    """
    frames: dict[int, Any] = {}
    notes: list[str] = []
    wanted = json_roundtrip(settings_dict(settings))
    wanted_eval = eval_settings_dict(settings)
    for path in sorted(Path(folder).glob("experiment-seed*.json")):
        meta, frame = load_exported(path)
        seed = meta["settings"].get("seed")
        differs = same_experiment(meta["settings"], wanted)
        evaluated = meta.get("eval_settings")
        if evaluated is None:
            differs.append("evaluation settings (not recorded)")
        else:
            differs += [f"evaluation {k}" for k in same_experiment(evaluated, wanted_eval)]
        if differs:
            notes.append(f"{path.name}: left out, its settings differ in {', '.join(differs)}")
            continue
        if seed == settings.seed or seed in frames:
            notes.append(f"{path.name}: left out, seed {seed} is already shown")
            continue
        machine = meta["machine"]
        took = f", {meta['seconds'] / 60:.0f} min" if meta.get("seconds") else ""
        notes.append(f"{path.name}: seed {seed}, run {meta.get('date_utc', '?')} UTC on "
                     f"{machine.get('cpu', '?')} ({machine.get('cpu_count', '?')} cores, GPU "
                     f"{machine.get('gpu') or 'none'}){took}")
        frames[seed] = frame
    return frames, notes


def json_roundtrip(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing settings."""
    import json

    return json.loads(json.dumps(value, default=str))
