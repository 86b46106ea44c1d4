"""Training runs: content-addressed, resumable, each ending with one summary line.

A run lives in ``cache_dir("runs") / f"{recipe.name}-{key}"`` where ``key`` hashes the recipe's
content (:meth:`Recipe.content_hash`) and the training rows' fingerprint, so the same recipe on
the same data always lands in the same folder:

```
<run>/recipe.yaml       the resolved recipe
<run>/data.json         source, number of pairs, fingerprint
<run>/checkpoints/      trainer checkpoints (adapter, optimizer, scheduler, RNG) on a schedule
<run>/metrics.csv       step, epoch, metric, value: one row per logged number
<run>/adapter/          the final LoRA adapter (PEFT format)
<run>/merged/           the adapter merged into a standalone model (``run.merge_adapter``)
<run>/result.json       written last: the run is finished
```

Calling :func:`train_run` again returns a finished run at once; an interrupted run resumes from
its last checkpoint (the trainer restores optimizer, scheduler, data order and RNG state, so the
final adapter matches an uninterrupted run with the same seed).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError
from equilibrate.paths import cache_dir
from equilibrate.train.recipes import Recipe

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.csv"
METRICS_COLUMNS = ("step", "epoch", "metric", "value")


@dataclass
class RunResult:
    """What a finished run left behind.

    Attributes:
        run_dir: the run's folder.
        adapter_dir: the final adapter (load with ``profiles.load_model(profile, adapter=...)``).
        status: ``"trained"`` (this call trained, possibly after resuming) or ``"reused"``.
        global_step: optimizer steps taken.
        final_loss: mean training loss over the run (trl's ``train_loss``).
        train_seconds: wall-clock seconds of the training loop in the call that finished it.
        resumed_from: the checkpoint step this call resumed from (0 when it started fresh).
        merged_dir: the merged standalone model, when asked for.
        recipe_name, method, pairs: for tables.
    """

    run_dir: Path
    adapter_dir: Path
    status: str
    global_step: int
    final_loss: float | None
    train_seconds: float
    resumed_from: int
    merged_dir: Path | None
    recipe_name: str
    method: str
    pairs: int

    @property
    def metrics_csv(self) -> Path:
        """The run's metrics file (long format: step, epoch, metric, value)."""
        return self.run_dir / METRICS_FILE

    def summary_line(self) -> str:
        """One line for logs and the command line."""
        loss = "n/a" if self.final_loss is None else f"{self.final_loss:.4f}"
        resumed = f", resumed from step {self.resumed_from}" if self.resumed_from else ""
        return (
            f"{self.recipe_name} ({self.method}): {self.status}, {self.global_step} steps on "
            f"{self.pairs} pairs, mean loss {loss}, {self.train_seconds:.1f} s{resumed} -> "
            f"{self.adapter_dir}"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (paths as strings)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], run_dir: Path) -> RunResult:
        """Read back a stored result; paths are re-rooted at ``run_dir`` (runs can move)."""
        merged = data.get("merged_dir")
        return cls(
            run_dir=run_dir,
            adapter_dir=run_dir / "adapter",
            status="reused",
            global_step=int(data["global_step"]),
            final_loss=data.get("final_loss"),
            train_seconds=float(data.get("train_seconds", 0.0)),
            resumed_from=int(data.get("resumed_from", 0)),
            merged_dir=run_dir / "merged" if merged else None,
            recipe_name=data.get("recipe_name", run_dir.name),
            method=data.get("method", "dpo"),
            pairs=int(data.get("pairs", 0)),
        )

    def metrics(self) -> dict[str, list[tuple[int, float]]]:
        """The logged metrics as ``{name: [(step, value), ...]}``."""
        return read_metrics(self.metrics_csv)


def run_key(recipe: Recipe, data_fingerprint: str) -> str:
    """12 hex digits naming a run: recipe content plus training data."""
    blob = f"{recipe.content_hash()}:{data_fingerprint}".encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_dir_for(recipe: Recipe, data_fingerprint: str, runs_root: str | Path | None = None) -> Path:
    """The folder a recipe trained on data with ``data_fingerprint`` uses."""
    root = Path(runs_root) if runs_root is not None else cache_dir("runs")
    return root / f"{recipe.name}-{run_key(recipe, data_fingerprint)}"


def finished_run(run_dir: Path) -> RunResult | None:
    """The stored result when ``run_dir`` holds a finished run, else ``None``."""
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    return RunResult.from_json(json.loads(path.read_text()), run_dir)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of a run that holds trainer state, if any."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    candidates = []
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and (path / "trainer_state.json").is_file():
            candidates.append((int(suffix), path))
    return max(candidates)[1] if candidates else None


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` from a run's ``metrics.csv``."""
    out: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["metric"], []).append((int(row["step"]), float(row["value"])))
    return out


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Drop rows logged after ``last_step`` (they will be logged again after resuming)."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= last_step]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRICS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _metrics_callback(path: Path):
    """A ``TrainerCallback`` appending every logged number to ``path`` (main process only)."""
    from transformers import TrainerCallback

    class MetricsCSV(TrainerCallback):
        def __init__(self) -> None:
            self._step_start = time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._last_step_seconds = time.perf_counter() - self._step_start

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            new = not path.is_file()
            values = dict(logs)
            if "loss" in values and hasattr(self, "_last_step_seconds"):
                values.setdefault("step_seconds", self._last_step_seconds)
            with path.open("a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(METRICS_COLUMNS)
                for name, value in values.items():
                    if isinstance(value, (int, float)) and math.isfinite(float(value)):
                        epoch = f"{state.epoch:.4f}" if state.epoch is not None else ""
                        writer.writerow([state.global_step, epoch, name, value])

    return MetricsCSV()


def _check_memory(recipe: Recipe, device: str) -> None:
    """Refuse to start a CUDA run the planner says will not fit."""
    if device != "cuda":
        return
    import torch

    from equilibrate.train.memory import plan_memory

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 1024**3
    gpu = min(total, recipe.hardware.gpu_memory_gib or total)
    plan = plan_memory(recipe, gpu)
    logger.info("memory plan: %.2f GiB of %.1f GiB", plan.total_gib, gpu)
    if not plan.fits:
        raise ConfigError(
            "hardware.micro_batch_size",
            f"the step needs about {plan.total_gib:.1f} GiB and this GPU has {gpu:.1f} GiB; "
            f"{plan.suggestion} (see `equilibrate plan --recipe ...`; check_memory=False "
            "to try anyway)",
            source=recipe.source,
        )


def _prepare_rows(recipe: Recipe, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add AMA spans when the method needs them and a scorer is named."""
    if recipe.method.name != "ama-dpo" or not rows or "chosen_spans" in rows[0]:
        return rows
    scorer = recipe.method.ama.get("scorer")
    if scorer is None:
        raise ConfigError(
            "method.ama.scorer",
            "ama-dpo needs chosen_spans/rejected_spans in the data or a scorer to make them "
            "(segment, implicit, reward-model)",
            source=recipe.source,
        )
    from equilibrate.ama import score_dataset

    try:
        return list(score_dataset(rows, scorer=scorer))
    except ConfigError as err:
        raise ConfigError("method.ama.scorer", err.problem, source=recipe.source) from None


def train_run(
    recipe: Recipe,
    dataset: Any = None,
    *,
    runs_root: str | Path | None = None,
    callbacks: list | None = None,
    check_memory: bool = True,
) -> RunResult:
    """Train ``recipe`` (or return its finished run) and return what it left behind.

    Args:
        recipe: the recipe.
        dataset: preference rows (a list of dicts or a ``datasets.Dataset``) to use instead of the
            recipe's ``data`` section.
        runs_root: parent folder of run directories (default ``cache_dir("runs")``).
        callbacks: extra ``transformers.TrainerCallback`` objects.
        check_memory: on CUDA, refuse to start when :func:`plan_memory` says it will not fit.

    Raises:
        ConfigError: the recipe cannot run here (no CUDA, not enough memory, bad AMA settings).
    """
    from datasets import Dataset

    from equilibrate.train.preferences import fingerprint, load_pairs
    from equilibrate.train.trainer import build_trainer, resolve_compute_dtype, resolve_device

    recipe = resolve_compute_dtype(recipe)  # before the run key: it names the dtype used
    device = resolve_device(recipe)
    if dataset is None:
        rows = load_pairs(
            recipe.data,
            num_words=_synthetic_words(recipe),
            spans=recipe.method.name == "ama-dpo",
        )
        source = recipe.data.source
    else:
        rows = dataset.to_list() if isinstance(dataset, Dataset) else [dict(r) for r in dataset]
        source = "given dataset"
    if not rows:
        raise ConfigError("data.source", "no preference pairs to train on", source=recipe.source)
    rows = _prepare_rows(recipe, rows)
    data_fp = fingerprint(rows)
    run_dir = run_dir_for(recipe, data_fp, runs_root)
    done = finished_run(run_dir)
    if done is not None:
        logger.info("%s", done.summary_line())
        return done
    if check_memory:
        _check_memory(recipe, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        (run_dir / "recipe.yaml").write_text(recipe.to_yaml())
        (run_dir / "data.json").write_text(
            json.dumps({"source": source, "pairs": len(rows), "fingerprint": data_fp}, indent=2)
        )
    checkpoint = last_checkpoint(run_dir)
    resumed_from = int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0
    if checkpoint is not None:
        logger.info("resuming %s from %s", run_dir.name, checkpoint.name)
        if main_process:
            _truncate_metrics(run_dir / METRICS_FILE, resumed_from)
    train_rows = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    trainer = build_trainer(
        recipe,
        Dataset.from_list(train_rows),
        run_dir / "checkpoints",
        callbacks=[_metrics_callback(run_dir / METRICS_FILE), *(callbacks or [])],
    )
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    adapter_dir = run_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    result = RunResult(
        run_dir=run_dir,
        adapter_dir=adapter_dir,
        status="trained",
        global_step=int(trainer.state.global_step),
        final_loss=_finite(output.metrics.get("train_loss")),
        train_seconds=seconds,
        resumed_from=resumed_from,
        merged_dir=None,
        recipe_name=recipe.name,
        method=recipe.method.name,
        pairs=len(rows),
    )
    if trainer.is_world_process_zero():
        if recipe.run.merge_adapter:
            result.merged_dir = merge_adapter(recipe, adapter_dir, run_dir / "merged")
        (run_dir / RESULT_FILE).write_text(json.dumps(result.to_json(), indent=2))
    trainer.accelerator.wait_for_everyone()
    logger.info("%s", result.summary_line())
    return result


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _synthetic_words(recipe: Recipe) -> int:
    """Vocabulary of the synthetic source: the word tokenizer's words when the model has one."""
    if recipe.data.source != "synthetic":
        return 256
    from equilibrate.train.synthetic import SPECIAL
    from equilibrate.train.trainer import load_tokenizer

    return max(1, min(256, len(load_tokenizer(recipe)) - len(SPECIAL)))


def merge_adapter(recipe: Recipe, adapter_dir: Path, out_dir: Path) -> Path:
    """Merge the adapter into an unquantized copy of the base model (on CPU) and save it.

    The base loads in ``model.weight_dtype`` (fp16/bf16 for 4-bit recipes: merging into 4-bit
    weights would round the update away). Needs CPU memory for the whole model (16 GB for 8B).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from equilibrate.train.trainer import load_tokenizer, torch_dtype, weights_folder

    dtype = torch_dtype(recipe.model.weight_dtype)
    base = AutoModelForCausalLM.from_pretrained(
        weights_folder(recipe), dtype=dtype, device_map={"": "cpu"}
    )
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    load_tokenizer(recipe).save_pretrained(out_dir)
    del base, merged
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    logger.info("merged adapter into %s", out_dir)
    return out_dir
