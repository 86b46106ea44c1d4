"""Carry scores from characters to tokens.

Scorers describe a response with *character spans*: ``[(start, end, score), ...]`` where
``response[start:end]`` is a piece of the response text (a sentence, or one token of the scorer's
own tokenizer). Spans survive any later tokenization: the trainer re-tokenizes prompt + response
with the policy's chat template, finds where each of its completion tokens lies in the response
text, and gives it the score of the span it overlaps most.

Completion tokens outside the response text (an end-of-turn token, a trailing newline of the
template) and tokens that overlap no span (whitespace between sentences) take the score of the
nearest scored token before them, or after them when none comes before. A response with no span
at all scores 0.0 everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

Span = tuple[int, int, float]


def decoded_token_ends(tokenizer, ids: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded text of ``ids`` and, for each token, the character where it ends.

    Tokens are decoded as prefixes (``decode(ids[:k])``) so that tokenizers whose tokens only make
    sense in context (byte-level BPE, SentencePiece) still give exact offsets. A token that ends
    inside a multi-byte character gets the end of the previous token (it covers no character).

    Returns:
        ``(text, ends)`` with ``len(ends) == len(ids)`` and ``ends`` non-decreasing.
    """
    ends: list[int] = []
    last = 0
    for k in range(1, len(ids) + 1):
        piece = tokenizer.decode(
            list(ids[:k]), skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        if piece.endswith("\ufffd"):
            length = last  # an incomplete character: wait for the token that completes it
        else:
            length = max(last, len(piece))
        ends.append(length)
        last = length
    text = tokenizer.decode(
        list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    if ends:
        ends[-1] = max(ends[-1], len(text))
    return text, ends


def locate_response(decoded: str, response: str) -> int | None:
    """Offset of ``response`` inside the decoded completion, or ``None`` if it is not there.

    Chat templates may strip the response; the stripped text is tried second.
    """
    at = decoded.find(response)
    if at >= 0:
        return at
    stripped = response.strip()
    if stripped:
        at = decoded.find(stripped)
        if at >= 0:
            return at - (len(response) - len(response.lstrip()))
    return None


def token_char_spans(
    tokenizer, completion_ids: Sequence[int], response: str
) -> list[tuple[int, int] | None]:
    """Character range of each completion token inside ``response`` (``None`` outside it).

    Args:
        tokenizer: the tokenizer that produced ``completion_ids``.
        completion_ids: the completion tokens (response + template tail such as end-of-turn).
        response: the response text the completion renders.

    Returns:
        one entry per token: ``(start, end)`` clipped to ``[0, len(response)]``, or ``None`` for a
        token that covers no character of the response.
    """
    decoded, ends = decoded_token_ends(tokenizer, completion_ids)
    offset = locate_response(decoded, response)
    if offset is None:
        logger.warning(
            "response text not found in its tokenization; scores are spread by position "
            "(response starts %r)",
            response[:40],
        )
        # Proportional placement: the best we can do without text alignment.
        total = max(len(decoded), 1)
        scale = len(response) / total
        out: list[tuple[int, int] | None] = []
        start = 0
        for end in ends:
            out.append((int(start * scale), int(end * scale)) if end > start else None)
            start = end
        return out
    out = []
    start = 0
    for end in ends:
        a, b = max(start - offset, 0), min(end - offset, len(response))
        out.append((a, b) if b > a else None)
        start = end
    return out


def token_scores(
    tokenizer, completion_ids: Sequence[int], response: str, spans: Sequence[Sequence[float]]
) -> list[float]:
    """A score for every completion token from character spans of the response.

    Args:
        tokenizer: the tokenizer that produced ``completion_ids``.
        completion_ids: the completion tokens, length ``T``.
        response: the response text.
        spans: ``[(start, end, score), ...]`` character spans of ``response``.

    Returns:
        ``list[float]`` of length ``T`` (rules in the module docstring).
    """
    ranges = token_char_spans(tokenizer, completion_ids, response)
    clean = sorted((int(s[0]), int(s[1]), float(s[2])) for s in spans if int(s[1]) > int(s[0]))
    scores: list[float | None] = []
    for rng in ranges:
        if rng is None or not clean:
            scores.append(None)
            continue
        a, b = rng
        best, best_overlap = None, 0
        for start, end, value in clean:
            if start >= b:
                break
            overlap = min(b, end) - max(a, start)
            if overlap > best_overlap:
                best, best_overlap = value, overlap
        scores.append(best)
    return fill_gaps(scores)


def fill_gaps(values: Sequence[float | None]) -> list[float]:
    """Fill ``None`` with the previous value, then leading ``None`` with the next; all None -> 0."""
    out: list[float | None] = list(values)
    last = None
    for i, v in enumerate(out):
        if v is None:
            out[i] = last
        else:
            last = v
    nxt = None
    for i in range(len(out) - 1, -1, -1):
        if values[i] is not None:
            nxt = values[i]
        if out[i] is None:
            out[i] = nxt
    return [0.0 if v is None else float(v) for v in out]
