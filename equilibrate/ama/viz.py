"""Token masks as coloured text.

:func:`render_masks_html` returns static HTML (it survives in a built book): each token is a small
box coloured by its score (green = safe, red = harmful, white = at the baseline), and tokens the
mask drops are greyed and struck through. :class:`MaskView` wraps it in an ipywidgets slider over
the baseline for live notebooks.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from equilibrate.ama.masks import message_mask_with_stats


def _colour(score: float, baseline: float, scale: float) -> str:
    """Background colour: green above the baseline, red below, strength by distance."""
    strength = min(abs(score - baseline) / scale, 1.0) if scale > 0 else 0.0
    alpha = 0.15 + 0.6 * strength
    if score > baseline:
        return f"rgba(30, 150, 60, {alpha:.2f})"
    if score < baseline:
        return f"rgba(210, 40, 40, {alpha:.2f})"
    return "rgba(255, 255, 255, 1)"


def render_masks_html(
    tokens: Sequence[str],
    scores: Sequence[float],
    mask: Sequence[float],
    *,
    baseline: float = 0.0,
    title: str | None = None,
    scale: float | None = None,
) -> str:
    """Static HTML for one response.

    Args:
        tokens: the token strings, length T (e.g. ``tokenizer.convert_ids_to_tokens`` decoded, or
            text pieces).
        scores: a score per token, length T.
        mask: the AMA mask or weights per token, length T (0 = dropped; soft weights set the
            opacity).
        baseline: the baseline the colours are centred on.
        title: a line shown above the tokens.
        scale: the score distance that gets the strongest colour (default: the largest distance).

    Returns:
        an HTML string (a ``<div>``); each token carries its score and weight as a tooltip.
    """
    if not len(tokens) == len(scores) == len(mask):
        raise ValueError(
            f"tokens, scores and mask must have one entry per token, got lengths "
            f"{len(tokens)}, {len(scores)}, {len(mask)}"
        )
    if scale is None:
        scale = max((abs(float(s) - baseline) for s in scores), default=1.0) or 1.0
    parts = ['<div style="font-family: monospace; line-height: 1.9; font-size: 0.9em">']
    if title:
        parts.append(f"<div style='font-weight: bold'>{html.escape(title)}</div>")
    for token, score, weight in zip(tokens, scores, mask, strict=True):
        score, weight = float(score), float(weight)
        text = html.escape(token).replace("\n", "&#x21b5;<br>")
        style = (
            f"background: {_colour(score, baseline, scale)}; padding: 1px 0; border-radius: 2px;"
        )
        if weight <= 0:
            style += " color: #999; text-decoration: line-through;"
        elif weight < 1:
            style += f" opacity: {0.35 + 0.65 * weight:.2f};"
        tip = f"score {score:+.2f}, weight {weight:.2f}"
        parts.append(f'<span title="{tip}" style="{style}">{text}</span>')
    parts.append("</div>")
    return "".join(parts)


def response_mask_html(
    pieces: Sequence[str],
    scores: Sequence[float],
    chosen: bool,
    baseline: float = 0.0,
    min_message_tokens: int = 1,
    title: str | None = None,
) -> tuple[str, float]:
    """Compute the mask of one response and render it; returns (html, kept share)."""
    score_t = torch.tensor([list(map(float, scores))], dtype=torch.float32)
    mask, stats = message_mask_with_stats(
        score_t, torch.ones_like(score_t), chosen, baseline, min_message_tokens
    )
    label = title or ("chosen" if chosen else "rejected")
    label += f" — keeps {stats.kept_share:.0%} of tokens" + (
        " (fallback: all tokens)" if stats.fallbacks else ""
    )
    page = render_masks_html(pieces, scores, mask[0].tolist(), baseline=baseline, title=label)
    return page, stats.kept_share


@dataclass
class ResponseTokens:
    """One response as the trainer sees it: completion tokens and their scores.

    Attributes:
        pieces: the text of each completion token (template tokens included), length T.
        scores: the score each token gets from the response's spans, length T.
    """

    pieces: list[str]
    scores: list[float]


def pair_tokens(tokenizer, row: dict[str, Any]) -> tuple[ResponseTokens, ResponseTokens]:
    """Chosen and rejected completion tokens of a scored pair, scored as the trainer scores them.

    ``row`` has ``prompt``, ``chosen``, ``rejected`` (strings or trl message lists) and
    ``chosen_spans``/``rejected_spans``. Tokens are cut the way the chat template renders the
    turn (so the end-of-turn token is there too).
    """
    from equilibrate.ama.align import decoded_token_ends, token_scores
    from equilibrate.ama.scorers import _prompt_and_completion_ids, _text

    prompt = _text(row["prompt"], "prompt", 1)
    out = []
    for side in ("chosen", "rejected"):
        response = _text(row[side], side, 1)
        _, completion = _prompt_and_completion_ids(tokenizer, prompt, response)
        text, ends = decoded_token_ends(tokenizer, completion)
        starts = [0, *ends[:-1]]
        pieces = [text[a:b] for a, b in zip(starts, ends, strict=True)]
        scores = token_scores(tokenizer, completion, response, row[f"{side}_spans"])
        out.append(ResponseTokens(pieces, scores))
    return out[0], out[1]


def render_pair_html(
    tokenizer, row: dict[str, Any], baseline: float = 0.0, min_message_tokens: int = 1
) -> str:
    """Static HTML of both masks of a scored pair (see :func:`pair_tokens`)."""
    chosen, rejected = pair_tokens(tokenizer, row)
    parts = []
    for tokens, is_chosen in ((chosen, True), (rejected, False)):
        page, _ = response_mask_html(
            tokens.pieces, tokens.scores, is_chosen, baseline, min_message_tokens
        )
        parts.append(page)
    return "<br>".join(parts)


class MaskView:
    """A baseline slider over one pair's masks (live notebooks only; needs ipywidgets).

    Args:
        chosen: ``(pieces, scores)`` of the chosen response.
        rejected: ``(pieces, scores)`` of the rejected response.
        low, high: slider range for the baseline.
        min_message_tokens: as in :func:`~equilibrate.ama.masks.message_mask`.
    """

    def __init__(
        self,
        chosen: tuple[Sequence[str], Sequence[float]],
        rejected: tuple[Sequence[str], Sequence[float]],
        low: float = -3.0,
        high: float = 3.0,
        min_message_tokens: int = 1,
    ) -> None:
        import ipywidgets as widgets

        self.chosen, self.rejected = chosen, rejected
        self.min_message_tokens = min_message_tokens
        self.slider = widgets.FloatSlider(
            value=0.0, min=low, max=high, step=0.1, description="baseline b"
        )
        self.output = widgets.HTML()
        self.slider.observe(lambda _change: self.refresh(), names="value")
        self.widget = widgets.VBox([self.slider, self.output])
        self.refresh()

    @classmethod
    def from_pair(cls, tokenizer, row: dict[str, Any], **kwargs: Any) -> MaskView:
        """A view of a scored pair (see :func:`pair_tokens`)."""
        chosen, rejected = pair_tokens(tokenizer, row)
        return cls((chosen.pieces, chosen.scores), (rejected.pieces, rejected.scores), **kwargs)

    def html(self, baseline: float) -> str:
        """Both responses' masks at ``baseline`` as one HTML string."""
        chosen_html, _ = response_mask_html(*self.chosen, True, baseline, self.min_message_tokens)
        rejected_html, _ = response_mask_html(
            *self.rejected, False, baseline, self.min_message_tokens
        )
        return chosen_html + "<br>" + rejected_html

    def refresh(self) -> None:
        self.output.value = self.html(self.slider.value)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
