"""AMADPOTrainer on a tiny random Llama: equivalence with trl's DPO, masking, alignment."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from helpers import llama3_tokenizer, smollm2_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM
from trl import DPOConfig, DPOTrainer

from equilibrate.ama.trainer import AMADPOConfig, AMADPOTrainer
from equilibrate.errors import ConfigError

PAIRS = [
    (
        "How do I kill a Python process?",
        "Use kill with its PID. Then check that it stopped.",
        "I cannot help with violence. Here is how to hurt someone.",
    ),
    ("Say hello.", "Hello there! Nice to meet you.", "Go away. I will not talk."),
]


@pytest.fixture(scope="module")
def llama3():
    return llama3_tokenizer()  # shared across the test session


@pytest.fixture(scope="module")
def smollm2():
    return smollm2_tokenizer()


def tiny_llama(tokenizer, seed: int) -> LlamaForCausalLM:
    """A 1-layer random Llama with the tokenizer's vocabulary (fp32, CPU)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def make_rows(chosen_spans=None, rejected_spans=None, pairs=PAIRS) -> list[dict]:
    """Conversational pairs; spans default to +1 over the chosen and -1 over the rejected text."""
    rows = []
    for i, (prompt, chosen, rejected) in enumerate(pairs):
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "chosen_spans": chosen_spans[i] if chosen_spans else [[0, len(chosen), 1.0]],
                "rejected_spans": rejected_spans[i]
                if rejected_spans
                else [[0, len(rejected), -1.0]],
            }
        )
    return rows


def settings(**extra) -> dict:
    base = dict(
        output_dir="/tmp/equilibrate-test-ama",
        bf16=False,
        per_device_train_batch_size=2,
        max_steps=2,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-2,
        gradient_checkpointing=False,
        beta=0.5,
        use_cpu=True,
    )
    base.update(extra)
    return base


def ama_trainer(tokenizer, rows, **extra) -> AMADPOTrainer:
    return AMADPOTrainer(
        model=tiny_llama(tokenizer, 0),
        ref_model=tiny_llama(tokenizer, 1),
        args=AMADPOConfig(**settings(**extra)),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )


def first_batch(trainer) -> dict:
    data = trainer.train_dataset
    return trainer.data_collator([data[i] for i in range(len(data))])


def token_log_probs(model, batch) -> torch.Tensor:
    """log p(token t+1 | tokens <= t) for every position, [2B, T-1], by a plain forward."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)


def test_all_ones_mask_matches_dpo_trainer(llama3):
    rows = make_rows()
    ama = ama_trainer(llama3, rows)
    dpo = DPOTrainer(
        model=tiny_llama(llama3, 0),
        ref_model=tiny_llama(llama3, 1),
        args=DPOConfig(**settings()),
        processing_class=llama3,
        train_dataset=Dataset.from_list(rows).remove_columns(["chosen_spans", "rejected_spans"]),
    )
    batch = first_batch(ama)
    weights, _ = ama.ama_weights(batch["ama_scores"], batch["completion_mask"])
    assert torch.equal(weights, batch["completion_mask"].float())
    loss_ama = ama.compute_loss(ama.model, batch)
    loss_ama.backward()
    loss_dpo = dpo.compute_loss(dpo.model, first_batch(dpo))
    loss_dpo.backward()
    assert abs(loss_ama.item() - 0.6931) > 1e-3  # policy != reference: a real test
    assert loss_ama.item() == pytest.approx(loss_dpo.item(), abs=1e-6)
    grads_dpo = dict(dpo.model.named_parameters())
    for name, param in ama.model.named_parameters():
        assert torch.allclose(param.grad, grads_dpo[name].grad, atol=1e-6), name


def test_masked_loss_equals_hand_formula_and_masked_tokens_get_zero_gradient(llama3):
    # chosen: first sentence safe (+1), second harmful (-1); rejected: all harmful except
    # "Here is how to hurt someone." scored +2 (safe by the scorer's book, so dropped)
    c0, r0 = PAIRS[0][1], PAIRS[0][2]
    cut_c, cut_r = c0.index("Then"), r0.index("Here")
    chosen_spans = [[[0, cut_c, 1.0], [cut_c, len(c0), -1.0]], [[0, len(PAIRS[1][1]), 1.0]]]
    rejected_spans = [[[0, cut_r, -1.0], [cut_r, len(r0), 2.0]], [[0, len(PAIRS[1][2]), -1.0]]]
    trainer = ama_trainer(llama3, make_rows(chosen_spans, rejected_spans))
    batch = first_batch(trainer)
    weights, stats = trainer.ama_weights(batch["ama_scores"], batch["completion_mask"])
    assert 0.5 < stats.kept_share < 1.0 and stats.fallbacks == 0

    raw = {}

    def keep_raw(_module, _args, output):  # registered first: sees log-probs before AMA
        if trainer.model.training and "policy" not in raw and output.log_probs.requires_grad:
            output.log_probs.retain_grad()
            raw["policy"] = output.log_probs
        return output

    handle = trainer.model.register_forward_hook(keep_raw)
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    handle.remove()

    with torch.no_grad():
        w = weights[:, 1:]
        ratio = token_log_probs(trainer.model, batch) - token_log_probs(trainer.ref_model, batch)
        sums = (w * ratio).sum(dim=1)
        chosen_sum, rejected_sum = sums.chunk(2)
        expected = -F.logsigmoid(0.5 * (chosen_sum - rejected_sum)).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)

    grad = raw["policy"].grad
    shifted_response = batch["completion_mask"][:, 1:].bool()
    dropped = shifted_response & (w == 0)
    assert dropped.any()
    assert torch.count_nonzero(grad[dropped]) == 0
    assert torch.count_nonzero(grad[w > 0]) == int((w > 0).sum())


@pytest.mark.parametrize("kind", ["llama3", "smollm2"])
def test_first_response_token_and_end_of_turn_are_trained(kind, request):
    tokenizer = request.getfixturevalue(kind)
    end_of_turn = {"llama3": "<|eot_id|>", "smollm2": "<|im_end|>"}[kind]
    eot_id = tokenizer.convert_tokens_to_ids(end_of_turn)
    c0 = PAIRS[0][1]
    cut = c0.index("Then")
    chosen_spans = [[[0, cut, 2.0], [cut, len(c0), 3.0]], [[0, len(PAIRS[1][1]), 1.0]]]
    trainer = ama_trainer(tokenizer, make_rows(chosen_spans))
    batch = first_batch(trainer)
    labels_mask = batch["completion_mask"][:, 1:]  # what trl's shifted log-probs cover
    ids = batch["input_ids"][:, 1:]
    first_word = tokenizer.encode("Use", add_special_tokens=False)[0]
    row = ids[0].tolist()
    start = row.index(first_word)
    assert labels_mask[0, start] == 1 and labels_mask[0, start - 1] == 0
    eot_positions = [t for t, v in enumerate(row) if v == eot_id and labels_mask[0, t] == 1]
    assert eot_positions, "end-of-turn token must be a trained label"
    scores = batch["ama_scores"][0, 1:]
    assert scores[start].item() == 2.0
    assert scores[eot_positions[-1]].item() == 3.0  # takes the last message's score
    weights, _ = trainer.ama_weights(batch["ama_scores"], batch["completion_mask"])
    assert weights[0, 1:][eot_positions[-1]] == 1.0


def test_long_prompts_are_dropped_or_rejected_never_nan(llama3, caplog):
    long_prompt = "word " * 400
    pairs = [(long_prompt, "Fine.", "No."), *PAIRS[:1]]
    with caplog.at_level(logging.WARNING, logger="equilibrate.ama.trainer"):
        trainer = ama_trainer(
            llama3,
            make_rows(pairs=pairs),
            max_length=64,
            max_steps=1,
            per_device_train_batch_size=1,
        )
    assert len(trainer.train_dataset) == 1
    assert "1 of 2 pairs dropped" in caplog.text
    # a prompt just under max_length: the response is cut to a few tokens, the loss is finite
    short_pairs = [("word " * 50, "Fine, here it is.", "No."), *PAIRS[:1]]
    trainer = ama_trainer(llama3, make_rows(pairs=short_pairs), max_length=60)
    loss = trainer.compute_loss(trainer.model, first_batch(trainer))
    assert torch.isfinite(loss)
    with pytest.raises(ConfigError, match="max_length"):
        ama_trainer(llama3, make_rows(pairs=[(long_prompt, "a", "b")]), max_length=64)


def test_training_logs_kept_share_and_soft_weights_run(llama3):
    c0 = PAIRS[0][1]
    cut = c0.index("Then")
    chosen_spans = [[[0, cut, 1.0], [cut, len(c0), -1.0]], [[0, len(PAIRS[1][1]), 1.0]]]
    trainer = ama_trainer(
        llama3, make_rows(chosen_spans), ama_weighting="soft", ama_temperature=0.5
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "ama/kept_share" in h]
    assert logged and all(0.0 < h["ama/kept_share"] < 1.0 for h in logged)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in logged)


def test_unscored_dataset_is_rejected(llama3):
    rows = make_rows()
    for row in rows:
        del row["chosen_spans"], row["rejected_spans"]
    with pytest.raises(ConfigError, match="score_dataset"):
        ama_trainer(llama3, rows)


@pytest.mark.parametrize(
    "field, value",
    [
        ("ama_baseline", "median"),
        ("ama_weighting", "fuzzy"),
        ("ama_min_message_tokens", 0),
        ("ama_temperature", 0.0),
        ("loss_type", "ipo"),
        ("precompute_ref_log_probs", True),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        AMADPOConfig(**settings(**{field: value}))


def test_config_parses_baseline_strings():
    assert AMADPOConfig(**settings(ama_baseline="0.25")).ama_baseline == 0.25
    assert AMADPOConfig(**settings(ama_baseline="batch_mean")).ama_baseline == "batch_mean"


def test_lora_reference_is_the_policy_without_adapters(llama3):
    from peft import LoraConfig

    c0 = PAIRS[0][1]
    cut = c0.index("Then")
    chosen_spans = [[[0, cut, 1.0], [cut, len(c0), -1.0]], [[0, len(PAIRS[1][1]), 1.0]]]
    trainer = AMADPOTrainer(
        model=tiny_llama(llama3, 0),
        args=AMADPOConfig(**settings(max_steps=1, learning_rate=0.05)),
        train_dataset=Dataset.from_list(make_rows(chosen_spans)),
        processing_class=llama3,
        peft_config=LoraConfig(
            r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False
        ),
    )
    assert trainer.ref_model is None
    batch = first_batch(trainer)
    weights, _ = trainer.ama_weights(batch["ama_scores"], batch["completion_mask"])
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        policy = token_log_probs(trainer.model, batch)
        with trainer.model.disable_adapter():
            reference = token_log_probs(trainer.model, batch)
        sums = (weights[:, 1:] * (policy - reference)).sum(dim=1)
        chosen_sum, rejected_sum = sums.chunk(2)
        expected = -F.logsigmoid(0.5 * (chosen_sum - rejected_sum)).mean()
    assert abs(expected.item() - 0.6931) > 1e-4  # random adapters: policy != reference
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
