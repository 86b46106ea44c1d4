"""The GPU check script, run in its CPU dry-run mode (tiny shape, nf4 on CPU, two steps)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_recipe_is_llama3_8b_qlora_at_1024_tokens(tmp_path):
    gpu_check = load_script()
    recipe = gpu_check.check_recipe(
        tmp_path, "ama-dpo", dry_run=False, max_length=1024, micro_batch=2, steps=6
    )
    assert recipe.model.shape == "llama-3-8b" and recipe.model.quantization == "nf4"
    assert recipe.model.double_quant and recipe.hardware.compute_dtype == "bf16"
    assert recipe.hyperparameters.max_length == 1024 and recipe.method.name == "ama-dpo"
    assert recipe.lora.r == 16 and recipe.lora.target_modules == "all-linear"
    # prompt 256 words + 1024-word responses: every pair is cut at max_length
    assert recipe.data.prompt_words + recipe.data.response_words > 1024


@pytest.mark.slow
def test_dry_run_writes_a_report(tmp_path):
    gpu_check = load_script()
    out = tmp_path / "check.json"
    assert gpu_check.main(["--dry-run", "--steps", "2", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"].startswith("dry-run")
    assert report["machine"]["gpu"] is None
    assert set(report["methods"]) == {"dpo", "ama-dpo"}
    for method in report["methods"].values():
        assert method["steps"] == 2 and method["tokens_per_step"] == 2 * 2 * 64
        assert method["planner_estimate_gib"] > 0
    assert report["ama_over_dpo_step_time"] > 0
