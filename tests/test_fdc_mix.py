"""FDC mixes: quotas, shortfall errors, naive mode, saving, and trl's DPO data pipeline."""

from __future__ import annotations

import json

import pytest
from conftest import requires_data
from datasets import Dataset

from equilibrate.errors import ConfigError
from equilibrate.fdc.mix import MixConfig, ShortfallError, assemble_mix, build_mix
from equilibrate.fdc.pool import Pool

COMPLY = (
    "Sure, here is how. First, gather the materials you need from the store. Second, mix them "
    "carefully in a bowl and wait ten minutes. Third, apply the mixture evenly and let it dry "
    "overnight before you use it."
)


def policy(prompts, system_prompt=None):
    """Complies with everything, except prompts containing 'refuse-me'."""
    return ["I'm sorry, I can't help with that." if "refuse-me" in p else COMPLY for p in prompts]


def make_pool(ehd=20, ihd=8, mhd=4, none=10, ehd_refused=0) -> Pool:
    rows = []
    for category, n in (("EHD", ehd), ("IHD", ihd), ("MHD", mhd), ("NONE", none)):
        for i in range(n):
            tag = " refuse-me" if category == "EHD" and i < ehd_refused else ""
            rows.append(
                {
                    "id": f"t:{category}{i}",
                    "prompt": f"How do I do {category} thing {i}?{tag}",
                    "source": "test",
                    "category": category,
                    "confidence": 1.0,
                    "labelled_by": "authors",
                }
            )
    return Pool(rows)


HELPFUL = [
    {
        "id": f"h:{i}",
        "prompt": f"Helpful question {i}?",
        "chosen": "A good answer.",
        "rejected": "A worse answer.",
        "category": "HELPFUL",
        "source": "hh_rlhf_helpful",
    }
    for i in range(10)
]


def test_quotas_follow_the_ratio_and_sum_to_the_total():
    assert MixConfig(safety_total=64).quotas() == {"EHD": 46, "IHD": 14, "MHD": 4}
    assert MixConfig(safety_total=256).quotas() == {"EHD": 183, "IHD": 55, "MHD": 18}
    assert MixConfig(safety_total=7, ratio=(1, 1, 1)).quotas() == {"EHD": 3, "IHD": 2, "MHD": 2}
    assert MixConfig(safety_total=10, ratio=(0, 1, 0)).quotas() == {"EHD": 0, "IHD": 10, "MHD": 0}
    config = MixConfig(safety_total=64)
    assert (config.helpful_total, config.counter_total) == (32, 8)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("safety_total", -1),
        ("ratio", (1, 2)),
        ("ratio", (0, 0, 0)),
        ("helpful_share", -0.5),
        ("mode", "random"),
        ("pair_source", "magic"),
        ("oversample", 0.5),
    ],
)
def test_mix_config_names_the_bad_field(field, value):
    with pytest.raises(ConfigError, match=field):
        MixConfig(**{field: value})


def test_fdc_mix_meets_every_quota():
    config = MixConfig(safety_total=14, counter_share=2 / 14, helpful_share=3 / 14, seed=1)
    parts = assemble_mix(config, make_pool(ehd_refused=3), policy, HELPFUL)
    cats = [r["category"] for r in parts.rows]
    assert {c: cats.count(c) for c in set(cats)} == {
        "EHD": 10,
        "IHD": 3,
        "MHD": 1,
        "NONE": 2,
        "HELPFUL": 3,
    }
    # refused prompts are dropped and replaced by others of the same category
    assert all("refuse-me" not in r["prompt"][0]["content"] for r in parts.rows)
    row = next(r for r in parts.rows if r["category"] == "IHD")
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert row["source"] == "templated"
    again = assemble_mix(config, make_pool(ehd_refused=3), policy, HELPFUL)
    assert again.rows == parts.rows  # seeded


def test_naive_mix_has_the_same_safety_total_without_regard_to_category():
    config = MixConfig(safety_total=14, counter_share=2 / 14, helpful_share=0, mode="naive")
    parts = assemble_mix(config, make_pool(), policy, [])
    assert len(parts.rows) == 16
    assert {r["category"] for r in parts.rows} <= {"EHD", "IHD", "MHD"}


def test_asking_for_more_than_exists_names_the_category_and_the_count():
    with pytest.raises(ShortfallError, match=r"'MHD'.*asked for 14 pairs but the pool has only 4"):
        assemble_mix(MixConfig(safety_total=14, ratio=(0, 0, 1)), make_pool(), policy, [])
    with pytest.raises(ShortfallError, match=r"'EHD'.*only 2 of 5 prompts.*rejected refuses"):
        assemble_mix(
            MixConfig(safety_total=3, ratio=(1, 0, 0), counter_share=0),
            make_pool(ehd=5, ehd_refused=3),
            policy,
            [],
        )


@requires_data
def test_build_mix_saves_and_reads_back(tmp_path):
    config = MixConfig(safety_total=14, counter_share=2 / 14, helpful_share=4 / 14)
    ds, manifest = build_mix(config, pool=make_pool(), respond=policy, folder=tmp_path)
    assert len(ds) == 20
    assert manifest["by_category"] == {"EHD": 10, "HELPFUL": 4, "IHD": 3, "MHD": 1, "NONE": 2}
    assert manifest["quotas"] == {"EHD": 10, "IHD": 3, "MHD": 1}
    assert manifest["config"]["pair_source"] == "templated"
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["total"] == 20
    ds2, manifest2 = build_mix(config, folder=tmp_path)  # read back, no pool or policy needed
    assert ds2.to_list() == ds.to_list() and manifest2 == manifest


def test_mix_rows_go_through_trl_dpo_data_pipeline(tmp_path):
    from trl import DPOConfig, DPOTrainer

    from tests.helpers import smollm2_tokenizer, tiny_llama

    config = MixConfig(safety_total=4, ratio=(2, 1, 1), counter_share=0.25, helpful_share=0.5)
    parts = assemble_mix(config, make_pool(), policy, HELPFUL)
    tokenizer = smollm2_tokenizer()
    trainer = DPOTrainer(
        model=tiny_llama(tokenizer, seed=0),
        ref_model=tiny_llama(tokenizer, seed=0),
        args=DPOConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=2,
            max_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            bf16=False,
            max_length=128,
        ),
        train_dataset=Dataset.from_list(parts.rows),
        processing_class=tokenizer,
    )
    data = trainer.train_dataset
    assert len(data) == 7
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(data.column_names) or {
        "prompt_input_ids",
        "chosen_input_ids",
        "rejected_input_ids",
    } <= set(data.column_names)
    result = trainer.train()
    assert result.global_step == 1


def test_dataset_source_draws_only_hh_rlhf_prompts():
    from equilibrate.fdc.mix import candidate_order

    pool = make_pool()
    pool.rows[0]["source"] = "hh_rlhf_harmless"
    order = candidate_order(MixConfig(pair_source="dataset"), pool)
    assert [r["id"] for r in order["EHD"]] == ["t:EHD0"]
    assert order["IHD"] == [] and len(order["NONE"]) == 10
    first = candidate_order(MixConfig(), pool)
    assert len(first["EHD"]) == 20 and first == candidate_order(MixConfig(), pool)
