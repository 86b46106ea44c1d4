"""The memory planner against sums worked out by hand."""

from __future__ import annotations

import re

import pytest

from equilibrate.cli import main
from equilibrate.train import Recipe, plan_memory
from equilibrate.train.memory import GIB, nf4_bytes, weight_bytes
from equilibrate.train.shapes import get_shape

TINY = {
    "name": "tiny",
    "model": {"path": "unused", "shape": "tiny-llama"},
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    "hyperparameters": {"batch_size": 4, "max_length": 48},
    "hardware": {"device": "cpu", "micro_batch_size": 2, "optimizer": "adamw_torch"},
}


def test_shape_counts():
    tiny = get_shape("tiny-llama")
    # q 32*32 + k 32*16 + v 32*16 + o 32*32 + gate/up/down 3 * 32*64 = 9216 per block
    assert tiny.linear_params() == 2 * 9216
    assert tiny.total_params() == 18432 + 2 * 512 * 32 + 5 * 32 == 51360
    # r * (in + out): q 4*64, k 4*48, v 4*48, o 4*64, gate/up/down 3 * 4*96 = 2048 per block
    assert tiny.lora_params(4) == 4096
    llama = get_shape("llama-3-8b")
    assert llama.total_params() == 8_030_261_248  # Meta-Llama-3-8B's published count
    assert llama.lora_params(16) == 41_943_040
    assert get_shape("smollm2-135m").total_params() == 134_515_008


def test_nf4_bytes_per_tensor():
    # 1024 weights: 512 packed bytes; 16 blocks of 64 -> 16 fp32 absmax = 64 bytes
    assert nf4_bytes(1024, double_quant=False) == 512 + 64
    # double quant: 16 uint8 absmax + ceil(16/256)=1 fp32 constant + 1 fp32 offset
    assert nf4_bytes(1024, double_quant=True) == 512 + 16 + 4 + 4
    # 2048 weights: 1024 packed, 32 blocks
    assert nf4_bytes(2048, double_quant=True) == 1024 + 32 + 4 + 4
    tiny = get_shape("tiny-llama")
    # per block with double quant: q,o 536 each; k,v 272 each; gate,up,down 1064 each = 4808
    assert weight_bytes(tiny, "nf4", "fp16", True) == 2 * 4808 + (32768 + 160) * 2
    assert weight_bytes(tiny, "none", "fp32", True) == 51360 * 4


def test_cpu_plan_by_hand():
    tiny_ckpt = Recipe.from_dict(TINY).replace({"hardware.gradient_checkpointing": True})
    plan = plan_memory(tiny_ckpt)
    tokens = 2 * 2 * 48  # chosen + rejected, micro-batch 2, 48 tokens
    per_token_block = (7 * 32 + 3 * 16 + 4 * 64) * 4 + 2 * 4 * 32  # 2368 bytes
    assert plan.tokens_per_micro_batch == tokens == 192
    assert plan.components == {
        "weights": 51360 * 4,
        "lora": 4096 * 4,
        "gradients": 4096 * 4,
        "optimizer": 4096 * 8,
        "activations": 2 * tokens * 32 * 4,  # each block keeps only its input
        "working layer": tokens * per_token_block,
        "logits": tokens * 32768 * 4 + tokens * 8 * 4 + tokens * 32 * 4,
        "cuda overhead": 0,
    }
    assert plan.total_bytes == 25_971_328
    no_ckpt = plan_memory(tiny_ckpt.replace({"hardware.gradient_checkpointing": False}))
    assert no_ckpt.components["activations"] == 2 * tokens * per_token_block == 909_312
    # chosen+rejected logits, policy and reference, in fp32 plus an fp32 copy
    assert plan.unfused_logits_bytes == 2 * tokens * 512 * 8


def test_gpu_qlora_plan_by_hand():
    recipe = Recipe.from_dict(TINY).replace(
        {
            "model.quantization": "nf4",
            "model.weight_dtype": "bf16",
            "hardware.device": "cuda",
            "hardware.compute_dtype": "bf16",
            "hardware.optimizer": "auto",
            "hardware.gradient_checkpointing": True,
        }
    )
    plan = plan_memory(recipe, gpu_memory_gib=16)
    tokens = 192
    expected = {
        "weights": 2 * 4808 + 32928 * 2,
        "lora": 16384,
        "gradients": 16384,
        "optimizer": 4096 * 2,  # paged 8-bit AdamW: two 1-byte moments
        "activations": 2 * tokens * 32 * 2,
        "working layer": tokens * ((7 * 32 + 3 * 16 + 4 * 64) * 2 + 256) + 32 * 64 * 2,
        "logits": tokens * 32768 * 2 + tokens * 8 * 4 + tokens * 32 * 4,
    }
    subtotal = sum(expected.values())
    assert subtotal == 13_010_640
    expected["cuda overhead"] = GIB // 2 + int(0.05 * subtotal)
    assert plan.components == expected
    assert plan.fits and plan.suggestion == ""


def test_shipped_recipes_fit_their_gpus():
    for name, gib in (("colab-t4", 15), ("a100", 40), ("h100", 80)):
        plan = plan_memory(Recipe.load(f"recipes/{name}.yaml"), gib)
        assert plan.fits, plan.summary()
        assert 5.2 < plan.components["weights"] / GIB < 5.4  # nf4 Llama-3-8B with 16-bit head


def test_suggestion_is_a_change_that_fits():
    recipe = Recipe.load("recipes/h100.yaml")
    plan = plan_memory(recipe, 16)
    assert not plan.fits
    micro = int(re.search(r"micro_batch_size: (\d+)", plan.suggestion).group(1))
    assert micro < recipe.hardware.micro_batch_size
    assert "effective batch stays 16" in plan.suggestion
    assert plan_memory(recipe.replace({"hardware.micro_batch_size": micro}), 16).fits
    # too small for anything but a shorter sequence
    tiny_gpu = plan_memory(recipe, 7.5)
    assert "max_length" in tiny_gpu.suggestion


def test_plan_command(capsys):
    assert main(["plan", "--recipe", "recipes/colab-t4.yaml", "--gpu-memory", "16"]) == 0
    out = capsys.readouterr().out
    assert "weights" in out and "fits in 16 GiB" in out
    assert main(["plan", "--recipe", "recipes/h100.yaml", "--gpu-memory", "16"]) == 1
    assert "suggestion: set hardware.micro_batch_size" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["hardware.micro_batch_size=3", "lora.r=0"])
def test_plan_command_rejects_bad_overrides(bad, capsys):
    assert main(["plan", "--recipe", "recipes/cpu.yaml", "--set", bad]) == 2
    assert "recipes/cpu.yaml" in capsys.readouterr().err
