"""Recipes: every shipped file loads; errors name the field and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from equilibrate.errors import ConfigError
from equilibrate.train import Recipe, repository_recipes

REPO = Path(__file__).resolve().parents[1]


def test_every_repository_recipe_loads():
    paths = repository_recipes()
    assert {p.stem for p in paths} >= {"cpu", "colab-t4", "a100", "h100"}
    for path in paths:
        recipe = Recipe.load(path)
        assert recipe.name == path.stem
        assert recipe.lora.target_modules == "all-linear"
        assert recipe.hyperparameters.batch_size % recipe.hardware.micro_batch_size == 0


def test_cpu_recipe_settings():
    cpu = Recipe.load(REPO / "recipes" / "cpu.yaml")
    assert (cpu.model.profile, cpu.model.shape, cpu.model.quantization) == (
        "cpu",
        "smollm2-135m",
        "none",
    )
    assert (cpu.lora.r, cpu.hyperparameters.learning_rate, cpu.method.beta) == (16, 2e-4, 0.1)
    assert (cpu.hyperparameters.max_length, cpu.hyperparameters.batch_size) == (192, 8)
    assert cpu.gradient_accumulation_steps == 1


def test_extends_merges_sections():
    t4 = Recipe.load(REPO / "recipes" / "colab-t4.yaml")
    a100 = Recipe.load(REPO / "recipes" / "a100.yaml")
    h100 = Recipe.load(REPO / "recipes" / "h100.yaml")
    assert (t4.model.quantization, t4.model.double_quant, t4.hardware.compute_dtype) == (
        "nf4",
        True,
        "fp16",
    )
    # a100 inherits the model and hyperparameters of colab-t4, changes precision and length
    assert a100.model.quantization == "nf4" and a100.model.weight_dtype == "bf16"
    assert a100.hyperparameters.learning_rate == t4.hyperparameters.learning_rate
    assert (a100.hyperparameters.max_length, h100.hyperparameters.max_length) == (1024, 2048)
    assert h100.hardware.compute_dtype == "bf16" and h100.description.startswith("Llama-3-8B")
    # 16 pairs per step: 16 micro-batches of 1 on the T4, 4 of 4 on the A100, 2 of 8 on the H100
    assert [r.gradient_accumulation_steps for r in (t4, a100, h100)] == [16, 4, 2]


def test_replace_makes_validated_variants():
    cpu = Recipe.load(REPO / "recipes" / "cpu.yaml")
    ama = cpu.replace({"method.name": "ama-dpo", "method.ama.baseline": 0.0}, data__limit=8)
    assert ama.method.name == "ama-dpo" and ama.method.ama == {"baseline": 0.0}
    assert ama.data.limit == 8 and cpu.data.limit == 64  # the original is unchanged
    assert ama.content_hash() != cpu.content_hash()
    assert cpu.replace({"run.checkpoint_every": 1}).content_hash() == cpu.content_hash()
    with pytest.raises(ConfigError, match="method.beta"):
        cpu.replace({"method.beta": -1})
    with pytest.raises(ConfigError, match="hyperparamters.lr"):
        cpu.replace({"hyperparamters.lr": 1})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("model: {profile: cpu}\nlora: {rank: 8}\n", "lora.rank", "unknown setting"),
        ("model: {profile: cpu}\nmethod: {name: ppo}\n", "method.name", "['dpo', 'ama-dpo']"),
        (
            "model: {profile: cpu}\nhyperparameters: {batch_size: 0}\n",
            "hyperparameters.batch_size",
            "positive integer",
        ),
        (
            "model: {profile: cpu}\nhyperparameters: {batch_size: 6}\n"
            "hardware: {micro_batch_size: 4}\n",
            "hardware.micro_batch_size",
            "not a multiple",
        ),
        ("model: {}\n", "model.profile", "model.path"),
        ("data: {source: x}\n", "model", "missing section"),
        ("model: {profile: cpu}\ntraining: {}\n", "training", "unknown section"),
        ("model: {profile: cpu, quantization: int3}\n", "model.quantization", "nf4"),
        (
            "model: {profile: cpu}\nmethod: {name: dpo, ama: {baseline: 0}}\n",
            "method.ama",
            "method.name is 'dpo'",
        ),
        (
            "model: {profile: cpu}\nlora: {target_modules: [q_proj, lm_head]}\n",
            "lora.target_modules",
            "lm_head",
        ),
        ("model: [1, 2\n", "recipe", "not valid YAML"),
    ],
)
def test_errors_name_field_and_file(tmp_path, text, field, words):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        Recipe.load(path)
    message = str(info.value)
    assert info.value.field == field
    assert str(path) in message and words in message


def test_extends_loop_and_missing_base(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nmodel: {profile: cpu}\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        Recipe.load(tmp_path / "a.yaml")
    write(tmp_path, "c.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        Recipe.load(tmp_path / "c.yaml")


def test_pairs_from_a_mix_folder_and_jsonl(tmp_path):
    """`--data` accepts a build-mix folder (its mix.jsonl) or a JSONL file; bad rows are named."""
    import json

    from equilibrate.errors import DataFormatError
    from equilibrate.train.preferences import load_pairs
    from equilibrate.train.recipes import DataSection

    rows = [
        {
            "id": "a",
            "prompt": [{"role": "user", "content": "hi"}],
            "chosen": [{"role": "assistant", "content": "hello"}],
            "rejected": [{"role": "assistant", "content": "no"}],
            "category": "EHD",
        },
        {"prompt": "plain text prompt", "chosen": "yes", "rejected": "no"},
    ]
    folder = tmp_path / "mix"
    folder.mkdir()
    (folder / "mix.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = sorted(load_pairs(DataSection(source=str(folder))), key=lambda r: r["id"])
    assert [p["id"] for p in pairs] == ["a", "mix/2"]
    assert pairs[1]["prompt"] == [{"role": "user", "content": "plain text prompt"}]
    assert pairs[1]["chosen"] == [{"role": "assistant", "content": "yes"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(DataFormatError, match="row 1, field 'rejected'"):
        load_pairs(DataSection(source=str(bad)))
