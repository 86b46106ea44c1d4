"""Measure QLoRA DPO and AMA-DPO on one GPU at Llama-3-8B's exact size, without downloading it.

What it does (about 4-6 minutes on one H200; sized to stay under 8):

1. builds a randomly initialised Llama with Meta-Llama-3-8B-Instruct's shapes (32 blocks,
   4096 wide, 8 key-value heads, 14336 MLP, 128256 vocabulary) directly on the GPU in bf16,
   saves it with a word-level tokenizer to a scratch folder, and frees the GPU;
2. for ``dpo`` and then ``ama-dpo``: loads it in nf4 with double quantization (bf16 compute),
   puts LoRA r=16 on every projection, and runs ``--steps`` optimizer steps on synthetic pairs of
   exactly ``--max-length`` tokens (prompt 256 words, responses filling the rest), through the
   same :func:`equilibrate.train.trainer.build_trainer` the book uses;
3. writes ``results/gpu_check.json``: the machine (GPU name, memory, versions), for each method
   the peak memory (allocated and reserved by PyTorch), the median step time after
   ``--warmup`` steps, tokens per second, the final loss, the AMA/DPO step-time ratio, and the
   memory planner's estimate for the same settings.

Random weights make the losses meaningless; the memory and the speed are the point.

``--dry-run`` does the same on the CPU with the ``tiny-llama`` shape, fp32 compute and a few
64-token steps (seconds), and writes to the cache unless ``--out`` says otherwise. It exists to
test this script; its figures say nothing about GPUs.

    python benchmarks/gpu_check.py                # on a GPU machine
    python benchmarks/gpu_check.py --dry-run      # anywhere
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("gpu_check")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "gpu_check.json"


def check_recipe(
    folder: Path, method: str, *, dry_run: bool, max_length: int, micro_batch: int, steps: int
):
    """The recipe measured: the a100 recipe's QLoRA settings on the random model."""
    from equilibrate.train.recipes import Recipe

    base = Recipe.load(REPO / "recipes" / "a100.yaml")
    prompt_words = max_length // 4
    overrides: dict[str, Any] = {
        "name": f"gpu-check-{method}",
        "model.profile": None,
        "model.path": str(folder),
        "model.shape": "tiny-llama" if dry_run else "llama-3-8b",
        "method.name": method,
        "method.ama": {"baseline": 0.0} if method == "ama-dpo" else {},
        "data.source": "synthetic",
        "data.limit": micro_batch * steps,
        "data.prompt_words": prompt_words,
        # more words than fit: every pair is cut to exactly max_length tokens
        "data.response_words": max_length,
        "hyperparameters.max_length": max_length,
        "hyperparameters.batch_size": micro_batch,
        "hyperparameters.max_steps": steps,
        "hyperparameters.warmup_ratio": 0.0,
        "hardware.micro_batch_size": micro_batch,
        "hardware.gpu_memory_gib": None,
        "run.checkpoint_every": 10_000,
        "run.logging_every": 1,
    }
    if dry_run:
        overrides.update(
            {
                "model.weight_dtype": "fp32",
                "hardware.device": "cpu",
                "hardware.compute_dtype": "fp32",
                "hardware.optimizer": "adamw_torch",
            }
        )
    else:
        overrides["hardware.device"] = "cuda"
    return base.replace(overrides)


def step_timer():
    """A TrainerCallback that records each optimizer step's wall-clock seconds."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def _sync(self) -> None:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def on_step_begin(self, args, state, control, **kwargs):
            self._sync()
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._sync()
            self.seconds.append(time.perf_counter() - self._start)

    return StepTimer()


def measure(recipe, *, warmup: int, num_words: int) -> dict[str, Any]:
    """Train ``recipe`` for its steps and return peak memory, step time and throughput."""
    import torch
    from datasets import Dataset

    from equilibrate.train.memory import plan_memory
    from equilibrate.train.synthetic import synthetic_pairs
    from equilibrate.train.trainer import build_trainer

    data = recipe.data
    rows = synthetic_pairs(
        data.limit,
        prompt_words=data.prompt_words,
        response_words=data.response_words,
        num_words=num_words,
        seed=data.seed,
        spans=recipe.method.name == "ama-dpo",
    )
    rows = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    cuda = torch.cuda.is_available() and recipe.hardware.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        trainer = build_trainer(recipe, Dataset.from_list(rows), Path(scratch), callbacks=[timer])
        load_seconds = time.perf_counter() - start
        output = trainer.train()
    timed = timer.seconds[warmup:] or timer.seconds
    step = statistics.median(timed)
    tokens_per_step = 2 * recipe.hyperparameters.batch_size * recipe.hyperparameters.max_length
    gpu_gib = None
    if cuda:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        gpu_gib = props.total_memory / 1024**3
    plan = plan_memory(recipe, gpu_gib)
    result: dict[str, Any] = {
        "method": recipe.method.name,
        "steps": len(timer.seconds),
        "step_seconds": [round(s, 4) for s in timer.seconds],
        "median_step_seconds": round(step, 4),
        "tokens_per_step": tokens_per_step,
        "tokens_per_second": round(tokens_per_step / step, 1),
        "final_loss": float(output.metrics.get("train_loss", float("nan"))),
        "model_load_seconds": round(load_seconds, 1),
        "planner_estimate_gib": round(plan.total_gib, 3),
        "planner_components_gib": {k: round(v, 4) for k, v in plan.gib().items()},
    }
    if cuda:
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 1024**3, 3)
        free, total = torch.cuda.mem_get_info()
        result["device_used_gib_at_end"] = round((total - free) / 1024**3, 3)
    del trainer, output
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def machine(dry_run: bool) -> dict[str, Any]:
    """Which machine and software produced the figures."""
    import bitsandbytes
    import peft
    import torch
    import transformers
    import trl

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        "cpu_count": os.cpu_count(),
    }
    if not dry_run and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gib=round(props.total_memory / 1024**3, 2),
            compute_capability=f"{props.major}.{props.minor}",
        )
    else:
        info["gpu"] = None
    return info


def build_model(folder: Path, *, dry_run: bool) -> tuple[Path, int]:
    """Save the random model and tokenizer; returns the folder and the tokenizer's word count."""
    import torch

    from equilibrate.train.shapes import get_shape
    from equilibrate.train.synthetic import save_random_model

    shape = get_shape("tiny-llama" if dry_run else "llama-3-8b")
    words = 256 if dry_run else 4096
    start = time.perf_counter()
    if dry_run:
        save_random_model(shape, folder, num_words=words)
    else:
        save_random_model(shape, folder, num_words=words, dtype=torch.bfloat16, device="cuda")
        torch.cuda.empty_cache()
    logger.info("random %s model saved in %.0f s", shape.name, time.perf_counter() - start)
    return folder, words


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """Build, measure both methods, and return the report."""
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU visible (use --dry-run to test the script)")
    max_length = 64 if args.dry_run else args.max_length
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        folder, words = build_model(Path(scratch) / "model", dry_run=args.dry_run)
        methods = {}
        for method in ("dpo", "ama-dpo"):
            recipe = check_recipe(
                folder,
                method,
                dry_run=args.dry_run,
                max_length=max_length,
                micro_batch=args.micro_batch,
                steps=args.steps,
            )
            methods[method] = measure(recipe, warmup=args.warmup, num_words=words)
            logger.info("%s: %s", method, json.dumps(methods[method]))
    ratio = methods["ama-dpo"]["median_step_seconds"] / methods["dpo"]["median_step_seconds"]
    return {
        "mode": "dry-run (CPU, tiny shape: not GPU figures)" if args.dry_run else "gpu",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(args.dry_run),
        "model": "random weights, tiny-llama shape"
        if args.dry_run
        else "random weights, Meta-Llama-3-8B-Instruct shape, nf4 + double quantization",
        "settings": {
            "max_length": max_length,
            "micro_batch_size": args.micro_batch,
            "steps": args.steps,
            "warmup_steps_excluded": args.warmup,
            "lora": "r=16, alpha=32, all linear projections",
            "compute_dtype": "fp32" if args.dry_run else "bf16",
            "optimizer": "adamw_torch" if args.dry_run else "paged_adamw_8bit",
            "gradient_checkpointing": True,
        },
        "methods": methods,
        "ama_over_dpo_step_time": round(ratio, 3),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shape on the CPU (a test)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON report")
    parser.add_argument("--max-length", type=int, default=1024, help="tokens per sequence")
    parser.add_argument("--micro-batch", type=int, default=2, help="pairs per step")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per method")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of timing")
    parser.add_argument("--scratch", default=None, help="folder for the random model (16 GB)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("EQUILIBRATE_PROGRESS", "0")
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    report = run_check(args)
    if args.out is not None:
        out = args.out
    elif args.dry_run:
        from equilibrate.paths import cache_dir

        out = cache_dir("gpu_check") / "dry_run.json"
    else:
        out = RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s (AMA/DPO step time %.3f)", out, report["ama_over_dpo_step_time"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
