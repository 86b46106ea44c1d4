"""Training runs on a tiny random Llama (CPU, seconds): resume, reuse, adapters that train."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from equilibrate.errors import ConfigError
from equilibrate.train import Recipe, train_run
from equilibrate.train.runs import finished_run, last_checkpoint, read_metrics
from equilibrate.train.shapes import get_shape
from equilibrate.train.synthetic import save_random_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_random_model(get_shape("tiny-llama"), tmp_path_factory.mktemp("tiny") / "model")


def tiny_recipe(folder, **overrides) -> Recipe:
    recipe = Recipe.from_dict(
        {
            "name": "tiny",
            "model": {"path": str(folder)},
            "data": {"source": "synthetic", "limit": 16, "prompt_words": 8, "response_words": 8},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "hyperparameters": {
                "batch_size": 4,
                "max_length": 48,
                "max_steps": 4,
                "learning_rate": 1e-2,
            },
            "hardware": {
                "device": "cpu",
                "micro_batch_size": 2,
                "gradient_checkpointing": True,
                "optimizer": "adamw_torch",
            },
            "run": {"checkpoint_every": 2, "keep_checkpoints": 3},
        }
    )
    return recipe.replace(overrides) if overrides else recipe


def adapter_weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(result.adapter_dir / "adapter_model.safetensors"))


class Interrupt(Exception):
    """Raised by the test callback to simulate a killed run."""


def interrupt_after_save(step: int):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt(f"stopped after checkpoint {step}")

    return Stop()


def test_resumed_run_matches_uninterrupted_run(tiny_folder, tmp_path):
    recipe = tiny_recipe(tiny_folder)
    straight = train_run(recipe, runs_root=tmp_path / "a")
    assert straight.status == "trained" and straight.global_step == 4

    with pytest.raises(Interrupt):
        train_run(recipe, runs_root=tmp_path / "b", callbacks=[interrupt_after_save(2)])
    run_dir = straight.run_dir.name
    assert last_checkpoint(tmp_path / "b" / run_dir).name == "checkpoint-2"
    assert finished_run(tmp_path / "b" / run_dir) is None

    resumed = train_run(recipe, runs_root=tmp_path / "b")
    assert resumed.resumed_from == 2 and resumed.global_step == 4
    a, b = adapter_weights(straight), adapter_weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    # metrics.csv has each step's loss exactly once, the rows after the checkpoint re-logged
    losses = read_metrics(resumed.metrics_csv)["loss"]
    assert [step for step, _ in losses] == [1, 2, 3, 4]


def test_finished_run_is_reused_without_training(tiny_folder, tmp_path, monkeypatch):
    recipe = tiny_recipe(tiny_folder, **{"hyperparameters.max_steps": 1})
    first = train_run(recipe, runs_root=tmp_path)
    stored = json.loads((first.run_dir / "result.json").read_text())
    assert stored["global_step"] == 1

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not build a trainer")

    monkeypatch.setattr("equilibrate.train.trainer.build_trainer", no_training)
    again = train_run(recipe, runs_root=tmp_path)
    assert again.status == "reused" and again.run_dir == first.run_dir
    # the bookkeeping section does not change the run; a hyperparameter does
    assert (
        train_run(recipe.replace({"run.logging_every": 5}), runs_root=tmp_path).status == "reused"
    )
    other = recipe.replace({"hyperparameters.learning_rate": 1e-3})
    assert other.content_hash() != recipe.content_hash()


def test_adapters_train_through_checkpointed_blocks(tiny_folder, tmp_path):
    """LoRA B starts at zero; with non-reentrant checkpointing it must move in every block."""
    result = train_run(
        tiny_recipe(tiny_folder, **{"hyperparameters.max_steps": 2}), runs_root=tmp_path
    )
    weights = adapter_weights(result)
    b_names = [n for n in weights if "lora_B" in n]
    assert len(b_names) == 2 * 7  # two blocks, seven projections each
    assert all(weights[n].abs().sum() > 0 for n in b_names)
    assert all(w.dtype == torch.float32 for w in weights.values())


def test_reference_is_the_policy_without_adapters(tiny_folder, tmp_path):
    from datasets import Dataset

    from equilibrate.train.synthetic import synthetic_pairs
    from equilibrate.train.trainer import build_trainer

    recipe = tiny_recipe(tiny_folder)
    rows = [{k: v for k, v in r.items() if k != "id"} for r in synthetic_pairs(4)]
    trainer = build_trainer(recipe, Dataset.from_list(rows), tmp_path)
    assert trainer.ref_model is None  # trl disables the adapters instead of copying the model
    assert trainer.args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert trainer.args.optim == "adamw_torch"
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)


def test_cuda_recipe_refuses_on_cpu(tiny_folder, tmp_path):
    recipe = tiny_recipe(tiny_folder).replace(
        {"hardware.device": "cuda", "hardware.compute_dtype": "bf16"}
    )
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="hardware.device"):
        train_run(recipe, runs_root=tmp_path)


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx2 avx512f amx_bf16 amx_tile", True), ("fpu avx512f avx512_bf16", True),
     ("fpu avx2 avx512f", False), (None, False)],
)
def test_cpu_bf16_is_read_from_the_cpu_flags(flags, native, tmp_path, monkeypatch):
    from equilibrate.train import trainer

    info = tmp_path / "cpuinfo"
    if flags is not None:
        info.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n")
    monkeypatch.setattr(trainer, "CPUINFO", info)
    assert trainer.cpu_has_native_bf16() is native


@pytest.mark.parametrize("native", [True, False])
def test_auto_compute_dtype_resolves_for_this_cpu(tiny_folder, monkeypatch, native):
    from equilibrate.train import trainer

    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: native)
    auto = tiny_recipe(tiny_folder).replace({"hardware.compute_dtype": "auto"})
    resolved = trainer.resolve_compute_dtype(auto)
    assert resolved.hardware.compute_dtype == ("bf16" if native else "fp32")
    fixed = tiny_recipe(tiny_folder)
    assert trainer.resolve_compute_dtype(fixed) is fixed
    args = trainer.training_arguments(resolved, "unused", "cpu")
    assert args.bf16 is native and not args.fp16
    bf16 = tiny_recipe(tiny_folder).replace({"hardware.compute_dtype": "bf16"})
    if native:
        assert trainer.resolve_device(bf16) == "cpu"
    else:
        with pytest.raises(ConfigError, match="AVX512-BF16"):
            trainer.resolve_device(bf16)
    with pytest.raises(ConfigError, match="fp16 compute runs on CUDA only"):
        trainer.resolve_device(tiny_recipe(tiny_folder).replace({"hardware.compute_dtype": "fp16"}))
    with pytest.raises(ConfigError, match="hardware.compute_dtype"):
        tiny_recipe(tiny_folder).replace({"hardware.compute_dtype": "fp64"})


def test_fp32_lm_head_projects_in_fp32_under_autocast(tiny_folder, tmp_path, monkeypatch):
    """trl's fused head projects in the autocast dtype (bf16 here); with hardware.fp32_lm_head it
    gets fp32 hidden states with autocast off, so the logit tiles are fp32."""
    import trl.trainer.utils as trl_utils
    from datasets import Dataset

    from equilibrate.train.synthetic import synthetic_pairs
    from equilibrate.train.trainer import build_trainer

    seen = []
    original = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):
        seen.append((hidden.dtype, torch.is_autocast_enabled("cpu")))
        return original(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    rows = [{k: v for k, v in r.items() if k != "id"} for r in synthetic_pairs(2)]
    ids = torch.tensor([[1, 10, 11, 12, 13]])
    for fp32_head, autocast_on in ((False, True), (True, False)):
        recipe = tiny_recipe(tiny_folder, **{"hardware.fp32_lm_head": fp32_head})
        trainer = build_trainer(recipe, Dataset.from_list(rows), tmp_path / str(fp32_head))
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = trainer.model(input_ids=ids, labels=ids, fused_lm_head=True)
        assert [autocast for _, autocast in seen] == [autocast_on]
        if fp32_head:
            assert seen[0][0] == torch.float32
        assert out.log_probs.dtype == torch.float32 and torch.isfinite(out.log_probs).all()


def test_cli_trains_ama_dpo_and_merges(tiny_folder, tmp_path, capsys):
    """`equilibrate train --method ama-dpo` on synthetic pairs with AMA spans, merged at the end."""
    from transformers import AutoModelForCausalLM

    from equilibrate.cli import main

    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(tiny_recipe(tiny_folder).to_yaml())
    code = main(
        [
            "train",
            "--recipe",
            str(recipe_file),
            "--method",
            "ama-dpo",
            "--out",
            str(tmp_path),
            "--set",
            "hyperparameters.max_steps=1",
            "--set",
            "run.merge_adapter=true",
        ]
    )
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("tiny (ama-dpo): trained, 1 steps on 16 pairs")
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert read_metrics(run_dir / "metrics.csv")["ama/kept_share"][0][1] < 1.0
    # the merged model computes what base + adapter compute
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_folder)
    with_adapter = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    merged = AutoModelForCausalLM.from_pretrained(run_dir / "merged").eval()
    ids = torch.tensor([[1, 10, 11, 12, 13]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, with_adapter(ids).logits, atol=1e-5, rtol=0)
