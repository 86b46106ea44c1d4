"""Scorers, span-to-token alignment, score_dataset, the `score` command and the mask HTML."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import llama3_tokenizer, smollm2_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from equilibrate.ama.align import token_char_spans, token_scores
from equilibrate.ama.scorers import (
    PROBE_SENTENCES,
    ImplicitScorer,
    RewardModelScorer,
    SafetyClassifier,
    Scorer,
    SegmentScorer,
    score_dataset,
    split_messages,
    trained_safety_classifier,
)
from equilibrate.ama.viz import render_masks_html
from equilibrate.errors import ConfigError
from equilibrate.profiles import encode_chat


@pytest.fixture(scope="module")
def llama3():
    return llama3_tokenizer()  # shared across the test session


@pytest.fixture(scope="module")
def smollm2():
    return smollm2_tokenizer()


def completion_ids(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    prompt_ids = encode_chat(tokenizer, prompt)
    full = encode_chat(
        tokenizer,
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        add_generation_prompt=False,
    )
    assert full[: len(prompt_ids)] == prompt_ids
    return prompt_ids, full[len(prompt_ids) :]


def test_split_messages_cuts_sentences_and_clauses():
    text = "Sure: mix A and B. Then heat it!\nDone; bye, but be careful?  "
    pieces = [text[a:b] for a, b in split_messages(text)]
    assert pieces == ["Sure:", "mix A and B.", "Then heat it!", "Done;", "bye,", "but be careful?"]
    assert split_messages("   ") == []
    assert split_messages("Version 3.5 is out.") == [(0, 19)]


@pytest.mark.parametrize("kind", ["llama3", "smollm2"])
def test_spans_reach_the_right_tokens(kind, request):
    tokenizer = request.getfixturevalue(kind)
    response = "Safe part here. Harmful part follows."
    _, completion = completion_ids(tokenizer, "Q?", response)
    spans = [[0, 15, 1.0], [16, len(response), -2.0]]
    scores = token_scores(tokenizer, completion, response, spans)
    ranges = token_char_spans(tokenizer, completion, response)
    assert len(scores) == len(completion)
    for rng, score in zip(ranges, scores, strict=True):
        if rng is None:  # end of turn and template tail: last message's score
            assert score == -2.0
        elif rng[1] <= 15:
            assert score == 1.0
        elif rng[0] >= 16:
            assert score == -2.0
    # the token ranges cover the response exactly once, in order
    covered = "".join(response[a:b] for a, b in filter(None, ranges))
    assert covered == response


class KeywordClassifier(SafetyClassifier):
    """Log-odds -1 for texts mentioning 'bomb', +1 otherwise (no encoder)."""

    def __init__(self):
        super().__init__([0.0], 0.0)

    def log_odds(self, texts):
        import numpy as np

        return np.array([-1.0 if "bomb" in t else 1.0 for t in texts])


def test_segment_scorer_scores_each_piece():
    scorer = SegmentScorer(KeywordClassifier())
    text = "I can't help. But here is a bomb recipe: mix it."
    spans = scorer.score("q", text)
    assert [(text[a:b], s) for a, b, s in spans] == [
        ("I can't help.", 1.0),
        ("But here is a bomb recipe:", -1.0),
        ("mix it.", 1.0),
    ]


def test_packaged_classifier_report_and_hand_labelled_sentences():
    clf = trained_safety_classifier()
    report = clf.report
    assert report.n_val == 238 and report.n_train == 666
    assert report.accuracy == pytest.approx(0.878, abs=1e-3)
    odds = clf.log_odds([t for t, _ in PROBE_SENTENCES])
    right = sum((o >= 0) == (y == 1) for o, (_, y) in zip(odds, PROBE_SENTENCES, strict=True))
    assert right >= 11  # 11 of 12 when shipped: "Making explosives ... illegal" reads as harmful


def tiny(tokenizer, seed: int, cls=LlamaForCausalLM, **extra):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )
    return cls(config).eval()


def test_implicit_scorer_is_beta_times_log_ratio(llama3):
    policy, reference = tiny(llama3, 0), tiny(llama3, 1)
    scorer = ImplicitScorer(policy, llama3, reference=reference, beta=0.5)
    response = "Use kill. Done."
    spans = scorer.score("How?", response)
    prompt_ids, completion = completion_ids(llama3, "How?", response)
    ids = torch.tensor([prompt_ids + completion])
    with torch.no_grad():
        lp = [
            torch.log_softmax(m(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
            for m in (policy, reference)
        ]
    expected = (0.5 * (lp[0] - lp[1]))[len(prompt_ids) - 1 :]
    content = [i for i, r in enumerate(token_char_spans(llama3, completion, response)) if r]
    assert [s for _, _, s in spans] == pytest.approx(expected[content].tolist(), abs=1e-5)
    assert "".join(response[a:b] for a, b, _ in spans) == response
    with pytest.raises(ConfigError, match="reference"):
        ImplicitScorer(policy, llama3)


def test_reward_model_scorer_prefix_and_delta(llama3):
    model = tiny(llama3, 2, LlamaForSequenceClassification, num_labels=1)
    response = "Fine. Here it is."
    prompt_ids, completion = completion_ids(llama3, "Hi", response)
    prefix = RewardModelScorer(model, llama3, mode="prefix").score("Hi", response)
    delta = RewardModelScorer(model, llama3, mode="delta").score("Hi", response)
    # prefix score at the k-th response token = the model's own reward of that prefix
    k = 3
    with torch.no_grad():
        own = model(input_ids=torch.tensor([prompt_ids + completion[:k]])).logits[0, 0]
    assert prefix[k - 1][2] == pytest.approx(own.item(), abs=1e-5)
    # deltas telescope: their sum is r(last content token) - r(end of prompt)
    with torch.no_grad():
        start = model(input_ids=torch.tensor([prompt_ids])).logits[0, 0].item()
    assert sum(s for *_, s in delta) == pytest.approx(prefix[-1][2] - start, abs=1e-4)
    with pytest.raises(ConfigError, match="mode"):
        RewardModelScorer(model, llama3, mode="sum")


class CountingScorer(Scorer):
    name = "counting"

    def __init__(self):
        self.calls = 0

    def fingerprint(self):
        return "counting-v1"

    def score(self, prompt, response):
        self.calls += 1
        return [(0, len(response), 1.0 if "ok" in response else -1.0)]


def test_score_dataset_adds_columns_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRATE_CACHE_DIR", str(tmp_path))
    rows = [
        {
            "prompt": [{"role": "user", "content": "q"}],
            "chosen": [{"role": "assistant", "content": "ok fine"}],
            "rejected": [{"role": "assistant", "content": "bad"}],
            "category": "EHD",
        }
    ]
    scorer = CountingScorer()
    out = score_dataset(rows, scorer)
    assert out[0]["chosen_spans"] == [[0, 7, 1.0]] and out[0]["rejected_spans"] == [[0, 3, -1.0]]
    assert out[0]["category"] == "EHD" and "chosen_spans" not in rows[0]
    score_dataset(rows, scorer)
    assert scorer.calls == 2  # second call read the cache
    with pytest.raises(ConfigError, match="scorer"):
        score_dataset(rows, "implicit")


def test_score_command_writes_spans(tmp_path, monkeypatch):
    from equilibrate.cli import main

    monkeypatch.setenv("EQUILIBRATE_CACHE_DIR", str(tmp_path / "cache"))
    mix = tmp_path / "mix.jsonl"
    mix.write_text(
        json.dumps(
            {
                "prompt": "How do I bake bread?",
                "chosen": "Mix flour and water. Bake it for 40 minutes.",
                "rejected": "I cannot help with that.",
            }
        )
        + "\n"
    )
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--scorer", "segment", "--in", str(mix), "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert [s[:2] for s in row["chosen_spans"]] == [[0, 20], [21, 44]]
    assert main(["score", "--in", str(mix), "--out", str(mix)]) == 2  # refuses to overwrite
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "chosen": "y"}\n')
    assert main(["score", "--in", str(bad), "--out", str(out)]) == 2


def test_render_masks_html_greys_dropped_tokens():
    page = render_masks_html(["<b>", "safe", " bad"], [1.0, 2.0, -1.0], [1, 1, 0], title="t")
    assert "&lt;b&gt;" in page and page.count("line-through") == 1
    assert 'title="score -1.00, weight 0.00"' in page
    with pytest.raises(ValueError, match="one entry per token"):
        render_masks_html(["a"], [1.0, 2.0], [1])
