"""Message masks: which response tokens AMA trains on.

Notation (the chapter uses the same): a response has tokens ``t = 1..T`` with scores ``s_t``
(positive = safe, from a scorer) and a baseline ``b``. Each token has a *side*:
``+1`` if ``s_t > b``, ``-1`` if ``s_t < b`` and ``0`` (neutral) if ``s_t == b``.

- A *message* is a maximal run of consecutive response tokens with the same side. The tokens where
  the side changes are *pivots*.
- Messages shorter than ``min_message_tokens`` are merged into a neighbour, one at a time: always
  the shortest such message first (the leftmost of equally short ones); it joins the *longer* of
  its two neighbours (the left one when both are equally long; the only one at an edge) and takes
  that neighbour's side. Neighbours with the same side then fuse. This repeats until every message
  is long enough or the response is a single message.
- The chosen response keeps messages with side ``+1`` or ``0``; the rejected response keeps those
  with side ``-1`` or ``0``. A token exactly at the baseline is therefore kept (with the default
  ``min_message_tokens=1``; a short neutral message merged into a neighbour takes its side).
- A response that would keep no token keeps all of them (it trains as plain DPO). These
  *fallbacks* are counted in :class:`MaskStats` and logged.

Response tokens are the positions where ``response_mask`` is 1; they are read left to right as one
sequence, so padding may sit on either side (or both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from equilibrate.errors import ConfigError

logger = logging.getLogger(__name__)

BASELINE_MODES = ("batch_mean",)


@dataclass(frozen=True)
class MaskStats:
    """What a mask kept.

    Attributes:
        kept_tokens: response tokens with a non-zero weight (soft weights: the sum of weights).
        response_tokens: all response tokens.
        responses: number of responses (rows).
        fallbacks: responses that would have kept nothing and were given all their tokens.
        baseline: the baseline ``b`` that was used (after resolving ``"batch_mean"``).
    """

    kept_tokens: float
    response_tokens: int
    responses: int
    fallbacks: int
    baseline: float

    @property
    def kept_share(self) -> float:
        """Share of response tokens kept, in [0, 1] (1.0 for an empty batch)."""
        return self.kept_tokens / self.response_tokens if self.response_tokens else 1.0

    @property
    def fallback_share(self) -> float:
        """Share of responses that fell back to all tokens."""
        return self.fallbacks / self.responses if self.responses else 0.0


def _check_inputs(
    scores: torch.Tensor, response_mask: torch.Tensor, chosen: bool | Sequence[bool] | torch.Tensor
) -> torch.Tensor:
    """Validate shapes; return ``chosen`` as a bool tensor of shape [B]."""
    if scores.dim() != 2:
        raise ConfigError("scores", f"expected a [B, T] tensor, got shape {tuple(scores.shape)}")
    if response_mask.shape != scores.shape:
        raise ConfigError(
            "response_mask",
            f"expected the shape of scores {tuple(scores.shape)}, got {tuple(response_mask.shape)}",
        )
    batch = scores.shape[0]
    if isinstance(chosen, bool):
        return torch.full((batch,), chosen, dtype=torch.bool, device=scores.device)
    chosen_t = torch.as_tensor(chosen, dtype=torch.bool, device=scores.device).reshape(-1)
    if chosen_t.numel() != batch:
        raise ConfigError("chosen", f"expected one flag per row ({batch}), got {chosen_t.numel()}")
    return chosen_t


def resolve_baseline(
    scores: torch.Tensor, response_mask: torch.Tensor, baseline: float | str
) -> float:
    """The baseline ``b`` as a number.

    ``"batch_mean"`` is the mean score over every response token of the batch (chosen and
    rejected rows together, whatever is passed in); an empty batch gives 0.0.
    """
    if isinstance(baseline, str):
        if baseline not in BASELINE_MODES:
            raise ConfigError(
                "baseline", f"expected a number or one of {BASELINE_MODES}, got {baseline!r}"
            )
        inside = response_mask.bool()
        if not bool(inside.any()):
            return 0.0
        return float(scores.detach()[inside].double().mean())
    value = float(baseline)
    if value != value:  # NaN
        raise ConfigError("baseline", "expected a number, got NaN")
    return value


def message_runs(sides: Sequence[int], min_message_tokens: int = 1) -> list[tuple[int, int, int]]:
    """Split a sequence of sides into messages after merging the short ones.

    Args:
        sides: side of each response token, each in {-1, 0, +1}, in reading order.
        min_message_tokens: messages shorter than this merge into a neighbour (see module doc).

    Returns:
        ``[(start, end, side), ...]`` with ``end`` exclusive, covering ``range(len(sides))``.
    """
    if min_message_tokens < 1:
        raise ConfigError(
            "min_message_tokens", f"expected an integer >= 1, got {min_message_tokens}"
        )
    runs: list[list[int]] = []  # [start, end, side]
    for i, side in enumerate(sides):
        if runs and runs[-1][2] == side:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, int(side)])
    while len(runs) > 1:
        short = [(r[1] - r[0], k) for k, r in enumerate(runs) if r[1] - r[0] < min_message_tokens]
        if not short:
            break
        _, k = min(short)  # shortest, then leftmost
        left = runs[k - 1] if k > 0 else None
        right = runs[k + 1] if k + 1 < len(runs) else None
        if right is None or (left is not None and left[1] - left[0] >= right[1] - right[0]):
            left[1] = runs[k][1]  # type: ignore[index]
            del runs[k]
        else:
            right[0] = runs[k][0]
            del runs[k]
        fused: list[list[int]] = []
        for run in runs:
            if fused and fused[-1][2] == run[2]:
                fused[-1][1] = run[1]
            else:
                fused.append(run)
        runs = fused
    return [(r[0], r[1], r[2]) for r in runs]


def _message_sides(
    scores: torch.Tensor, response_mask: torch.Tensor, baseline: float, min_message_tokens: int
) -> torch.Tensor:
    """Side of the message each token belongs to, [B, T] int8 (0 outside the response too)."""
    raw = torch.sign(scores.detach().double() - baseline).to(torch.int8)
    inside = response_mask.bool()
    raw = raw.masked_fill(~inside, 0)
    if min_message_tokens == 1:
        return raw  # every token is a message side by itself: runs change nothing
    out = torch.zeros_like(raw)
    for row in range(raw.shape[0]):
        positions = inside[row].nonzero().flatten()
        if positions.numel() == 0:
            continue
        sides = raw[row, positions].tolist()
        merged = torch.empty(len(sides), dtype=torch.int8)
        for start, end, side in message_runs(sides, min_message_tokens):
            merged[start:end] = side
        out[row, positions] = merged.to(out.device)
    return out


def _apply_fallback(
    weights: torch.Tensor, response_mask: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """Give rows with no kept token all their response tokens; return (weights, fallbacks)."""
    inside = response_mask.bool()
    has_response = inside.any(dim=1)
    empty = has_response & ~(keep & inside).any(dim=1)
    if bool(empty.any()):
        weights = torch.where(empty[:, None], inside.to(weights.dtype), weights)
    return weights, int(empty.sum())


def _log_stats(stats: MaskStats) -> None:
    if stats.fallbacks:
        logger.debug(
            "AMA mask: %d of %d responses kept no token and train on all tokens (plain DPO)",
            stats.fallbacks,
            stats.responses,
        )


def _prepare(
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    chosen: bool | Sequence[bool] | torch.Tensor,
    baseline: float | str,
    min_message_tokens: int,
) -> tuple[torch.Tensor, float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check the inputs shared by the mask and the weights and find each token's message.

    Returns ``(chosen_t, b, inside, sides, keep)``: the per-row chosen flags [B], the resolved
    baseline, the response tokens [B, T] (bool), each token's message side [B, T] and the tokens
    the hard mask keeps [B, T] (bool).
    """
    chosen_t = _check_inputs(scores, response_mask, chosen)
    b = resolve_baseline(scores, response_mask, baseline)
    sides = _message_sides(scores, response_mask, b, int(min_message_tokens))
    inside = response_mask.bool()
    keep = torch.where(chosen_t[:, None], sides >= 0, sides <= 0) & inside
    return chosen_t, b, inside, sides, keep


def _finish(
    weights: torch.Tensor,
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    keep: torch.Tensor,
    baseline: float,
) -> tuple[torch.Tensor, MaskStats]:
    """Apply the fallback, cast to the scores' float dtype, count and log what was kept."""
    weights, fallbacks = _apply_fallback(weights, response_mask, keep)
    weights = weights.to(scores.dtype if scores.is_floating_point() else torch.float32)
    inside = response_mask.bool()
    stats = MaskStats(
        kept_tokens=float(weights.sum()),
        response_tokens=int(inside.sum()),
        responses=int(inside.any(dim=1).sum()),
        fallbacks=fallbacks,
        baseline=baseline,
    )
    _log_stats(stats)
    return weights, stats


def message_mask_with_stats(
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    chosen: bool | Sequence[bool] | torch.Tensor,
    baseline: float | str = 0.0,
    min_message_tokens: int = 1,
) -> tuple[torch.Tensor, MaskStats]:
    """:func:`message_mask` and what it kept (see there for the arguments)."""
    _, b, _, _, keep = _prepare(scores, response_mask, chosen, baseline, min_message_tokens)
    mask = keep.to(scores.dtype if scores.is_floating_point() else torch.float32)
    return _finish(mask, scores, response_mask, keep, b)


def message_mask(
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    chosen: bool | Sequence[bool] | torch.Tensor,
    baseline: float | str = 0.0,
    min_message_tokens: int = 1,
) -> torch.Tensor:
    """The AMA mask: 1 on the response tokens a pair trains on, 0 elsewhere.

    Args:
        scores: float [B, T], a score per token (positive = safe); ignored outside the response.
        response_mask: 0/1 [B, T], 1 on response tokens (padding may be on either side).
        chosen: ``True`` if every row is a chosen response, ``False`` if every row is rejected,
            or a bool tensor / sequence [B] with one flag per row.
        baseline: the number ``b``, or ``"batch_mean"`` (mean score over the batch's response
            tokens).
        min_message_tokens: messages shorter than this merge into a neighbour (module doc).

    Returns:
        float tensor [B, T] of 0/1, zero outside the response; a row whose response would keep
        nothing is all ones on its response (fallback to plain DPO).
    """
    return message_mask_with_stats(scores, response_mask, chosen, baseline, min_message_tokens)[0]


def message_weights_with_stats(
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    chosen: bool | Sequence[bool] | torch.Tensor,
    baseline: float | str = 0.0,
    min_message_tokens: int = 1,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, MaskStats]:
    """Soft AMA weights in [0, 1] and what they kept.

    Every message gets one weight from the mean score ``m`` of its tokens:
    ``sigmoid((m - b) / temperature)`` in the chosen response and ``sigmoid((b - m) / temperature)``
    in the rejected one. Messages are those of :func:`message_mask` (same merging). As the
    temperature goes to 0 the weights approach the hard mask (neutral messages get 0.5 instead
    of 1). A response whose hard mask would fall back keeps all tokens at weight 1.

    Args:
        scores, response_mask, chosen, baseline, min_message_tokens: as in :func:`message_mask`.
        temperature: score units per unit of logit; > 0.

    Returns:
        (weights float [B, T] in [0, 1], zero outside the response; :class:`MaskStats` whose
        ``kept_tokens`` is the sum of the weights).
    """
    if not temperature > 0:
        raise ConfigError("temperature", f"expected a number > 0, got {temperature}")
    chosen_t, b, inside, sides, keep = _prepare(
        scores, response_mask, chosen, baseline, min_message_tokens
    )
    values = scores.detach().double().masked_fill(~inside, 0.0)
    means = torch.zeros_like(values)
    for row in range(values.shape[0]):
        positions = inside[row].nonzero().flatten()
        if positions.numel() == 0:
            continue
        row_sides = sides[row, positions].tolist()
        row_values = values[row, positions]
        row_means = torch.empty_like(row_values)
        start = 0
        for end in range(1, len(row_sides) + 1):
            if end == len(row_sides) or row_sides[end] != row_sides[start]:
                row_means[start:end] = row_values[start:end].mean()
                start = end
        means[row, positions] = row_means
    sign = torch.where(chosen_t, 1.0, -1.0).to(means)[:, None]
    weights = torch.sigmoid(sign * (means - b) / temperature).masked_fill(~inside, 0.0)
    return _finish(weights, scores, response_mask, keep, b)


def message_weights(
    scores: torch.Tensor,
    response_mask: torch.Tensor,
    chosen: bool | Sequence[bool] | torch.Tensor,
    baseline: float | str = 0.0,
    min_message_tokens: int = 1,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Soft AMA weights, float [B, T] in [0, 1] (see :func:`message_weights_with_stats`)."""
    return message_weights_with_stats(
        scores, response_mask, chosen, baseline, min_message_tokens, temperature
    )[0]
