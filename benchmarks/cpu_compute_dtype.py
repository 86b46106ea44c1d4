"""CPU training step time: fp32 against bf16 autocast, on the experiment's own pairs.

Trains the ``fdc`` arm's recipe for a few optimizer steps twice, once with
``hardware.compute_dtype: fp32`` and once with ``bf16`` (autocast over fp32 weights), in one run,
into a temporary folder (nothing is cached), and prints the median step time of each (the first
step, which warms up, is not counted), the ratio and the mean loss of each, so that a speed-up that
changed what is learned would show. bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); on
others the recipe check refuses it and this prints why.

    python benchmarks/cpu_compute_dtype.py [--steps 6] [--repeat 2]

Run it on a quiet machine: two torch processes on two cores slow each other several times over.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("EQUILIBRATE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def step_seconds(dtype: str, steps: int, root: str) -> tuple[list[float], float]:
    from equilibrate import experiment
    from equilibrate.train import train_run

    settings = experiment.ExperimentSettings()
    data, _ = experiment.arm_data("fdc", settings)
    recipe = experiment.arm_recipe("fdc", settings, len(data)).replace(
        {"hyperparameters.max_steps": steps, "hardware.compute_dtype": dtype,
         "run.checkpoint_every": 1000}
    )
    result = train_run(recipe, data, runs_root=os.path.join(root, dtype))
    metrics = result.metrics()
    return [v for _, v in metrics["step_seconds"]][1:], result.final_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2, help="alternating rounds per dtype")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    losses: dict[str, float] = {}
    for _ in range(args.repeat):
        for dtype in ("fp32", "bf16"):
            with tempfile.TemporaryDirectory() as root:
                seconds, loss = step_seconds(dtype, args.steps, root)
            times[dtype] += seconds
            losses[dtype] = loss
    for dtype, values in times.items():
        print(f"{dtype}: median step {statistics.median(values):.2f} s over {len(values)} steps, "
              f"mean loss {losses[dtype]:.4f}")
    ratio = statistics.median(times["fp32"]) / statistics.median(times["bf16"])
    print(f"ratio (fp32 step time / bf16 step time): {ratio:.2f}")


if __name__ == "__main__":
    main()
