"""The several-process path: two CPU processes (torchrun, gloo) train a tiny model for 2 steps.

On GPUs the same command runs under ``accelerate launch --config_file accelerate/...``; on CPU
``accelerate launch --cpu`` starts a single process without MPI, so torchrun stands in for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from equilibrate.train.runs import finished_run, read_metrics
from equilibrate.train.shapes import get_shape
from equilibrate.train.synthetic import save_random_model

RECIPE = """
name: tiny2
model: {{path: {model}}}
data: {{source: synthetic, limit: 16, prompt_words: 8, response_words: 8}}
lora: {{r: 4, alpha: 8, dropout: 0.0}}
hyperparameters: {{batch_size: 4, max_length: 48, max_steps: 2}}
hardware: {{device: cpu, micro_batch_size: 1, num_processes: 2, optimizer: adamw_torch}}
run: {{checkpoint_every: 2}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_train_one_run(tmp_path):
    model = save_random_model(get_shape("tiny-llama"), tmp_path / "model")
    recipe = tmp_path / "tiny2.yaml"
    recipe.write_text(RECIPE.format(model=model))
    runs = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "equilibrate.cli",
        "train",
        "--recipe",
        str(recipe),
        "--out",
        str(runs),
    ]
    env = {**os.environ, "EQUILIBRATE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    result = finished_run(run_dir)
    assert result is not None and result.global_step == 2
    # 2 steps x 4 pairs (1 per process x 2 processes x 2 accumulation) = half of the 16 pairs:
    # a single process would have seen a quarter
    epochs = read_metrics(result.metrics_csv)["epoch"]
    assert epochs[-1] == (2, 0.5)
