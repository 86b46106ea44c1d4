"""Helpfulness: multiple choice by log-likelihood, exact-match generation, and HumanEval.

**Multiple choice** (MMLU, ARC-Easy, ARC-Challenge, CommonsenseQA, WinoGrande, TruthfulQA MC1). No
text is generated: for each option we compute log p(option | question) under the model, summing the
log-probabilities of the option's tokens, and pick the best option. Two ways to compare options:

- ``"sum"``: the total log-probability. Favours short options (every extra token costs).
- ``"mean"``: the total divided by the option's token count (per-token average). Options of very
  different lengths (CommonsenseQA, ARC, TruthfulQA MC1) are then compared fairly.

The default is ``"mean"``; both accuracies are stored (metrics ``accuracy_sum`` and
``accuracy_mean``) and ``accuracy`` repeats the default one. The question is shown as plain
text, ``"Question: ...\\nAnswer:"``, with each option as the continuation (``" Paris"``); set
``chat=True`` to wrap the question in the profile's chat template instead. WinoGrande uses
*partial scoring*: each option fills the blank in the sentence, and we score the rest of the
sentence after the blank (the same words for both options), so the option is judged by how well
the sentence continues.

**Generation with exact match** (GSM8K, BBH): the model answers in its chat template, greedy, and
the final answer is read from the text (:func:`extract_number`, :func:`extract_bbh_answer`).

**HumanEval** pass@1 (greedy, one sample): the completion is run against the unit tests in
:mod:`equilibrate.evaluate.sandbox`, only when a setting asks for it (running model-written code).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import torch

from equilibrate.errors import ConfigError, DataFormatError
from equilibrate.evaluate.intervals import proportion
from equilibrate.evaluate.results import Score

log = logging.getLogger(__name__)

MC_BENCHMARKS = (
    "mmlu",
    "arc_easy",
    "arc_challenge",
    "commonsenseqa",
    "winogrande",
    "truthfulqa_mc1",
)
GENERATION_BENCHMARKS = ("gsm8k", "bbh")
CODE_BENCHMARKS = ("humaneval",)
NORMALISATIONS = ("sum", "mean")
MC_FORMATS = ("cloze", "letters")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def accuracy_score(benchmark: str, metric: str, correct: Sequence[bool]) -> Score:
    """The share of ``correct`` items with its Wilson interval (axis ``helpfulness``)."""
    est = proportion(sum(bool(c) for c in correct), len(correct))
    return Score("helpfulness", benchmark, metric, est.value, est.ci_low, est.ci_high, est.n)


# ---------------------------------------------------------------------------------------------
# Multiple choice by log-likelihood


def mc_requests(
    row: Mapping[str, Any], benchmark: str, fmt: str = "cloze"
) -> list[tuple[str, str]]:
    """The ``(context, continuation)`` text pair scored for each option of one question.

    ``cloze``: context ``"Question: <q>\\nAnswer:"``, continuation ``" <option text>"``.
    ``letters``: the options are listed as ``A. ...`` under the question and the continuation is
    ``" A"``, ``" B"``... (useful for large models; small ones score near chance this way).
    ``winogrande`` always uses partial scoring: context = sentence up to the blank with the option
    in it, continuation = the rest of the sentence.
    """
    if fmt not in MC_FORMATS:
        raise ConfigError("mc_format", f"expected one of {MC_FORMATS}, got {fmt!r}")
    question, choices = str(row["question"]), [str(c) for c in row["choices"]]
    if benchmark == "winogrande":
        blank = question.find("_")
        if blank < 0:
            raise DataFormatError("winogrande", None, "question", f"no '_' blank in {question!r}")
        rest = " " + question[blank + 1 :].strip()
        return [(question[:blank] + choice, rest) for choice in choices]
    if fmt == "letters":
        listed = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        context = f"Question: {question}\n{listed}\nAnswer:"
        return [(context, f" {LETTERS[i]}") for i in range(len(choices))]
    return [(f"Question: {question}\nAnswer:", f" {choice}") for choice in choices]


def encode_request(
    tokenizer: Any, context: str, continuation: str, chat: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids of a context and its continuation, tokenized separately.

    The context gets the tokenizer's own special tokens (a BOS where the tokenizer adds one), or the
    chat template with a generation prompt when ``chat`` is set; the continuation gets none.
    """
    if chat:
        from equilibrate.profiles import encode_chat

        context_ids = list(encode_chat(tokenizer, context, add_generation_prompt=True))
        continuation = continuation.lstrip()
    else:
        context_ids = list(tokenizer(context)["input_ids"])
    continuation_ids = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not context_ids or not continuation_ids:
        raise ConfigError(
            "request", f"empty context or continuation: {context!r} / {continuation!r}"
        )
    return context_ids, continuation_ids


@torch.no_grad()
def continuation_logprobs(
    model: Any,
    requests: Sequence[tuple[Sequence[int], Sequence[int]]],
    batch_size: int = 8,
    pad_token_id: int = 0,
    max_length: int | None = None,
) -> list[tuple[float, int]]:
    """log p(continuation | context) for each ``(context_ids, continuation_ids)`` pair.

    The pairs are joined, left-padded into batches of ``batch_size`` (longest first) and run through
    the model once; with left padding every continuation sits at the end of its row, so only the
    last ``max(len(continuation))`` positions' logits are needed. Position ids are counted from the
    first real token, so a padded row scores like the same row alone.

    Args:
        model: a causal LM returning ``logits`` of shape (batch, positions, vocab).
        requests: pairs of token-id lists; contexts must be non-empty.
        max_length: keep at most this many tokens per pair, cutting from the left of the context.

    Returns:
        ``(sum of the continuation tokens' log-probabilities in nats, number of tokens)`` per pair,
        in the order given.
    """
    if batch_size < 1:
        raise ConfigError("batch_size", f"must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    joined: list[tuple[list[int], int]] = []
    for ctx, cont in requests:
        if not ctx or not cont:
            raise ConfigError("requests", "each context and continuation needs at least one token")
        ids = list(ctx) + list(cont)
        if max_length is not None and len(ids) > max_length:
            if len(cont) >= max_length:
                raise ConfigError("max_length", f"{max_length} leaves no room for the context")
            ids = ids[-max_length:]
        joined.append((ids, len(cont)))
    order = sorted(range(len(joined)), key=lambda i: -len(joined[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(joined)
    for start in range(0, len(order), batch_size):
        batch = [joined[i] for i in order[start : start + batch_size]]
        inputs = [ids[:-1] for ids, _ in batch]  # the last token is only ever a target
        width = max(len(x) for x in inputs)
        keep = max(k for _, k in batch)
        input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(inputs):
            input_ids[row, width - len(x) :] = torch.tensor(x)
            mask[row, width - len(x) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        kwargs = dict(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
        )
        try:
            logits = model(**kwargs, logits_to_keep=keep).logits
        except TypeError:  # a model without logits_to_keep
            logits = model(**kwargs).logits
        logprobs = torch.log_softmax(logits[:, -keep:, :].float(), dim=-1)  # (batch, keep, vocab)
        for row, (ids, k) in enumerate(batch):
            targets = torch.tensor(ids[-k:], device=logprobs.device)  # (k,)
            picked = logprobs[row, keep - k :, :].gather(1, targets[:, None])  # (k, 1)
            out[order[start + row]] = (float(picked.sum()), k)
    return out


def choose_option(option_scores: Sequence[tuple[float, int]], normalisation: str = "mean") -> int:
    """The index of the best option; ``option_scores`` holds ``(log-prob sum, token count)``.

    ``sum`` compares the sums, ``mean`` the sums divided by the token counts. Ties go to the first.
    """
    if normalisation not in NORMALISATIONS:
        raise ConfigError(
            "normalisation", f"expected one of {NORMALISATIONS}, got {normalisation!r}"
        )
    values = [s if normalisation == "sum" else s / k for s, k in option_scores]
    return max(range(len(values)), key=lambda i: (values[i], -i))


@dataclass(frozen=True)
class MCOutcome:
    """Per-question records (id, answer, both picks, option scores) and the benchmark's scores."""

    items: list[dict[str, Any]]
    scores: list[Score]


def score_multiple_choice(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    benchmark: str,
    normalisation: str = "mean",
    fmt: str = "cloze",
    chat: bool = False,
    batch_size: int = 8,
    max_length: int | None = None,
) -> MCOutcome:
    """Accuracy on a multiple-choice benchmark by option log-likelihood (see the module docstring).

    Returns ``accuracy`` (with ``normalisation``), ``accuracy_sum`` and ``accuracy_mean``.
    """
    if normalisation not in NORMALISATIONS:
        raise ConfigError(
            "normalisation", f"expected one of {NORMALISATIONS}, got {normalisation!r}"
        )
    requests: list[tuple[list[int], list[int]]] = []
    spans: list[tuple[int, int]] = []
    for row in rows:
        pairs = mc_requests(row, benchmark, fmt)
        spans.append((len(requests), len(pairs)))
        requests.extend(encode_request(tokenizer, c, x, chat) for c, x in pairs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results = continuation_logprobs(model, requests, batch_size, pad, max_length)
    items = []
    for row, (first, count) in zip(rows, spans, strict=True):
        options = results[first : first + count]
        pick_sum, pick_mean = choose_option(options, "sum"), choose_option(options, "mean")
        answer = int(row["answer"])
        pick = pick_sum if normalisation == "sum" else pick_mean
        items.append(
            {
                "id": str(row["id"]),
                "answer": answer,
                "pick_sum": pick_sum,
                "pick_mean": pick_mean,
                "correct": int(pick == answer),
                "option_logprobs": [round(s, 4) for s, _ in options],
                "option_tokens": [k for _, k in options],
            }
        )
    scores = [
        accuracy_score(benchmark, "accuracy", [i["correct"] for i in items]),
        accuracy_score(benchmark, "accuracy_sum", [i["pick_sum"] == i["answer"] for i in items]),
        accuracy_score(benchmark, "accuracy_mean", [i["pick_mean"] == i["answer"] for i in items]),
    ]
    return MCOutcome(items, scores)


# ---------------------------------------------------------------------------------------------
# GSM8K: reading the final number

_NUMBER = re.compile(r"(?<![\w.])-?(?:\$\s?)?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_HASHES = re.compile(r"####\s*")
_ANSWER_IS = re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def normalize_number(text: str) -> str | None:
    """A number written as in GSM8K answers, canonical: no ``$``, commas or trailing zeros.

    ``"$1,234.50"`` -> ``"1234.5"``, ``"-7"`` -> ``"-7"``, ``"3.0"`` -> ``"3"``; ``None`` when
    ``text`` is not a number.
    """
    cleaned = text.replace("\u2212", "-").replace("$", "").replace(",", "").replace(" ", "").strip()
    cleaned = cleaned.rstrip(".")
    if cleaned.count("-") > 1:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _first_number(text: str) -> str | None:
    match = _NUMBER.search(text.replace("\u2212", "-"))
    return normalize_number(match.group(0)) if match else None


def extract_number(response: str) -> str | None:
    """The final numeric answer in a model's response, or ``None`` if it states no number.

    In order of trust: the number after the last ``####``; the number in the last ``\\boxed{}``;
    the first number after the last "answer is" / "answer:"; else the last number in the text.
    Commas, ``$`` and trailing zeros are dropped (:func:`normalize_number`).
    """
    text = response.replace("\u2212", "-")
    hashes = list(_HASHES.finditer(text))
    if hashes and (number := _first_number(text[hashes[-1].end() :])) is not None:
        return number
    boxed = _BOXED.findall(text)
    if boxed and (number := _first_number(boxed[-1])) is not None:
        return number
    stated = list(_ANSWER_IS.finditer(text))
    if stated and (number := _first_number(text[stated[-1].end() :])) is not None:
        return number
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_correct(response: str, gold: str) -> bool:
    """Whether the number read from ``response`` equals the gold answer (compared as decimals)."""
    predicted, target = extract_number(response), normalize_number(str(gold))
    if target is None:
        raise DataFormatError("gsm8k", None, "answer", f"gold answer {gold!r} is not a number")
    return predicted is not None and Decimal(predicted) == Decimal(target)


GSM8K_PROMPT = (
    "{question}\n\nSolve the problem step by step. End with a line of the form "
    '"The answer is N." where N is a number.'
)


def gsm8k_prompt(row: Mapping[str, Any]) -> str:
    """The 0-shot chat prompt for one GSM8K question."""
    return GSM8K_PROMPT.format(question=row["question"])


# ---------------------------------------------------------------------------------------------
# BBH: per-format answer reading

_OPTION = re.compile(r"\(([A-Z])\)")
_BARE_LETTER = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")
_WORD_SETS = (("true", "false"), ("yes", "no"), ("valid", "invalid"))


def bbh_answer_format(gold: str) -> str:
    """``option`` for "(A)", ``true/false``/``yes/no``/``valid/invalid``, ``number`` or ``text``."""
    gold = gold.strip()
    if re.fullmatch(r"\([A-Z]\)", gold):
        return "option"
    for words in _WORD_SETS:
        if gold.lower() in words:
            return "/".join(words)
    if re.fullmatch(r"-?\d+", gold):
        return "number"
    return "text"


def _normalize_text(text: str) -> str:
    text = text.strip().strip("\"'`*").strip()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(".").strip().lower()


def extract_bbh_answer(response: str, gold: str) -> str | None:
    """The answer in ``response``, in the same form as ``gold`` (whose form picks the reader).

    The answer is looked for in the text after the last "answer is" (up to the end of that line);
    without that phrase, in the whole response, taking the last candidate (a chain of thought ends
    with its answer). Options come back as ``"(B)"``, word answers lowercase (``"true"``), numbers
    canonical, free text (word sorting, Dyck languages) lowercase with single spaces. ``None``
    when nothing of the right form is found.
    """
    fmt = bbh_answer_format(gold)
    marks = list(re.finditer(r"answer is\s*:?\s*", response, re.IGNORECASE))
    if marks:
        span, pick = response[marks[-1].end() :].split("\n", 1)[0], 0
    else:
        span, pick = response, -1
    if fmt == "option":
        found = _OPTION.findall(span) or (_BARE_LETTER.findall(span) if marks else [])
        return f"({found[pick]})" if found else None
    if fmt == "number":
        numbers = _NUMBER.findall(span)
        return normalize_number(numbers[pick]) if numbers else None
    if fmt == "text":
        if not marks:
            lines = [ln for ln in response.strip().splitlines() if ln.strip()]
            span = lines[-1] if lines else ""
        answer = _normalize_text(span)
        return answer or None
    words = fmt.split("/")
    found = re.findall(r"\b(" + "|".join(words) + r")\b", span, re.IGNORECASE)
    return found[pick].lower() if found else None


def bbh_correct(response: str, gold: str) -> bool:
    """Whether the answer read from ``response`` matches ``gold`` in ``gold``'s format."""
    predicted = extract_bbh_answer(response, gold)
    if predicted is None:
        return False
    fmt = bbh_answer_format(gold)
    if fmt == "number":
        return Decimal(predicted) == Decimal(normalize_number(gold) or "nan")
    if fmt == "option":
        return predicted == gold.strip()
    return predicted == _normalize_text(gold)


BBH_PROMPT = (
    '{question}\n\nThink step by step, then finish with "So the answer is X." where X is the '
    "answer in the form the question asks for."
)


def bbh_prompt(row: Mapping[str, Any]) -> str:
    """The 0-shot chat prompt for one BBH question."""
    return BBH_PROMPT.format(question=row["question"])


# ---------------------------------------------------------------------------------------------
# HumanEval

HUMANEVAL_PROMPT = (
    "Complete the following Python function. Reply with the whole function, imports included, "
    "in one ```python code block.\n\n```python\n{prompt}```"
)
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def humaneval_prompt(row: Mapping[str, Any]) -> str:
    """The chat prompt asking for the function completing ``row["prompt"]``."""
    return HUMANEVAL_PROMPT.format(prompt=row["prompt"])


def humaneval_program(row: Mapping[str, Any], response: str) -> str:
    """The Python program that checks one HumanEval answer: solution, tests, ``check(entry_point)``.

    The code is the first fenced block of ``response`` (or the whole response without a fence).
    If it defines the entry point it follows the task's prompt (whose docstring-only stub it then
    replaces, while the prompt's imports and helpers stay); otherwise it is taken as the body that
    continues the prompt.
    """
    fenced = _FENCE.search(response)
    code = fenced.group(1) if fenced else response
    entry = str(row["entry_point"])
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        solution = f"{row['prompt']}\n{code}"
    else:
        solution = f"{row['prompt']}{code}"
    return f"{solution}\n\n{row['test']}\n\ncheck({entry})\n"
