"""Log-likelihood scoring on a tiny random model, answer extraction for GSM8K and BBH."""

from __future__ import annotations

import pytest
import torch

from equilibrate.errors import DataFormatError
from equilibrate.evaluate import helpfulness as hf

WORDS = (
    "Question : What is the capital of France ? Answer Paris Lyon a big city "
    "Sarah was better than Maria so got the easy cases ."
).split()


def tiny_tokenizer():
    """A word-level tokenizer over WORDS (no special tokens added to text)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")


def tiny_model(vocab_size: int):
    """A 2-layer Llama with random weights (fp32, eval mode)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def lm():
    tokenizer = tiny_tokenizer()
    return tiny_model(len(tokenizer)), tokenizer


def by_hand(model, context: list[int], continuation: list[int]) -> float:
    """log p(continuation | context) from one unpadded forward pass, token by token."""
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)  # (T, V)
    total = 0.0
    for j, token in enumerate(continuation):
        # the token at position len(context) + j is predicted by the logits one position earlier
        total += float(logprobs[len(context) + j - 1, token])
    return total


def test_continuation_logprobs_match_hand_computation_and_ignore_padding(lm) -> None:
    model, _ = lm
    requests = [([2, 3, 4], [5, 6]), ([2], [7]), ([8, 9, 10, 11, 12], [13, 14, 15])]
    expected = [by_hand(model, c, x) for c, x in requests]
    for batch_size in (1, 3):
        got = hf.continuation_logprobs(model, requests, batch_size=batch_size, pad_token_id=0)
        assert [k for _, k in got] == [2, 1, 3]
        assert [s for s, _ in got] == pytest.approx(expected, abs=1e-4)
    # a log-probability of a vocabulary of 23 under a near-uniform random model is about -ln 23
    assert expected[1] == pytest.approx(-3.1, abs=0.5)


def test_continuation_logprobs_truncate_context_from_the_left(lm) -> None:
    model, _ = lm
    got = hf.continuation_logprobs(model, [([2, 3, 4, 5], [6])], max_length=3)
    assert got[0][0] == pytest.approx(by_hand(model, [4, 5], [6]), abs=1e-4)


def test_choose_option_sum_and_mean_differ() -> None:
    scores = [(-3.0, 1), (-4.0, 4)]  # sums -3 vs -4; per token -3 vs -1
    assert hf.choose_option(scores, "sum") == 0
    assert hf.choose_option(scores, "mean") == 1
    assert hf.choose_option([(-1.0, 1), (-1.0, 1)], "sum") == 0  # ties go to the first


def test_mc_requests_cloze_letters_and_winogrande_partial_scoring() -> None:
    row = {"id": "1", "question": "What is the capital of France ?", "choices": ["Paris", "Lyon"]}
    assert hf.mc_requests(row, "arc_easy") == [
        ("Question: What is the capital of France ?\nAnswer:", " Paris"),
        ("Question: What is the capital of France ?\nAnswer:", " Lyon"),
    ]
    letters = hf.mc_requests(row, "mmlu", "letters")
    assert letters[1] == (
        "Question: What is the capital of France ?\nA. Paris\nB. Lyon\nAnswer:",
        " B",
    )
    wino = {
        "question": "Sarah was better than Maria so _ got the easy cases .",
        "choices": ["Sarah", "Maria"],
    }
    assert hf.mc_requests(wino, "winogrande") == [
        ("Sarah was better than Maria so Sarah", " got the easy cases ."),
        ("Sarah was better than Maria so Maria", " got the easy cases ."),
    ]
    with pytest.raises(DataFormatError, match="blank"):
        hf.mc_requests({"question": "no blank", "choices": ["a", "b"]}, "winogrande")


def test_score_multiple_choice_picks_the_hand_computed_best_option(lm) -> None:
    model, tokenizer = lm
    rows = [
        {
            "id": "q1",
            "question": "What is the capital of France ?",
            "choices": ["Paris", "a big city"],
            "answer": 0,
        },
        {
            "id": "q2",
            "question": "What is a big city ?",
            "choices": ["Lyon", "Paris", "France"],
            "answer": 2,
        },
    ]
    out = hf.score_multiple_choice(model, tokenizer, rows, "arc_easy", batch_size=2)
    for row, item in zip(rows, out.items, strict=True):
        context = tokenizer("Question: " + row["question"] + "\nAnswer:")["input_ids"]
        sums, counts = [], []
        for choice in row["choices"]:
            ids = tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
            sums.append(by_hand(model, context, ids))
            counts.append(len(ids))
        assert item["option_logprobs"] == pytest.approx(sums, abs=1e-3)
        assert item["pick_sum"] == max(range(len(sums)), key=lambda i: sums[i])
        assert item["pick_mean"] == max(range(len(sums)), key=lambda i: sums[i] / counts[i])
    metrics = {s.metric: s for s in out.scores}
    assert set(metrics) == {"accuracy", "accuracy_sum", "accuracy_mean"}
    assert metrics["accuracy"].value == metrics["accuracy_mean"].value  # "mean" is the default
    assert metrics["accuracy"].n == 2


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("She sells 9 eggs.\n#### 1,234", "1234"),
        ("Step 1: 16 - 3 = 13.\nThe answer is $18.", "18"),
        ("The final answer is 3.50 dollars", "3.5"),
        ("The answer is: -7", "-7"),
        ("It drops by \u22127 degrees", "-7"),
        ("So the total is \\boxed{42}.", "42"),
        ("#### $1,000.00", "1000"),
        ("In 2023 she had 12 apples, then 7 were left", "7"),
        ("The total is 10 - 3", "3"),
        ("The answer is 1, 2, 3", "1"),
        ("I am not sure how to solve this.", None),
        ("", None),
    ],
)
def test_extract_number(response: str, expected: str | None) -> None:
    assert hf.extract_number(response) == expected


def test_gsm8k_correct_compares_numbers_and_rejects_bad_gold() -> None:
    assert hf.gsm8k_correct("The answer is 18.0", "18")
    assert hf.gsm8k_correct("#### 1,234", "1234")
    assert not hf.gsm8k_correct("The answer is 17", "18")
    assert not hf.gsm8k_correct("no idea", "18")
    with pytest.raises(DataFormatError, match="not a number"):
        hf.gsm8k_correct("The answer is 3", "three")


@pytest.mark.parametrize(
    ("response", "gold", "extracted", "correct"),
    [
        ("Let's think. So the answer is (B).", "(B)", "(B)", True),
        ("So the answer is B.", "(B)", "(B)", True),
        ("(A) does not fit, but (C) does.", "(C)", "(C)", True),
        ("So the answer is (D).", "(A)", "(D)", False),
        ("not ( True ) is False. So the answer is False.", "False", "false", True),
        ("So the answer is True.", "False", "true", False),
        ("So the answer is invalid.", "invalid", "invalid", True),
        ("So the answer is valid.", "invalid", "valid", False),
        ("So the answer is yes", "no", "yes", False),
        ("6 + 7 = 13, minus 48. So the answer is -35.", "-35", "-35", True),
        (
            "So the answer is: apple  banana cherry.",
            "apple banana cherry",
            "apple banana cherry",
            True,
        ),
        ("So the answer is ] ] >", "] ] >", "] ] >", True),
        ("I cannot tell.", "(A)", None, False),
        ("", "True", None, False),
        ("The answer is unclear", "7", None, False),
    ],
)
def test_bbh_extraction(response: str, gold: str, extracted: str | None, correct: bool) -> None:
    assert hf.extract_bbh_answer(response, gold) == extracted
    assert hf.bbh_correct(response, gold) is correct


def test_bbh_answer_format() -> None:
    assert hf.bbh_answer_format("(K)") == "option"
    assert hf.bbh_answer_format("Yes") == "yes/no"
    assert hf.bbh_answer_format("-35") == "number"
    assert hf.bbh_answer_format("] >") == "text"
