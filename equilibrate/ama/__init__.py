"""Adaptive message-wise alignment (AMA).

- :mod:`~equilibrate.ama.masks`: which response tokens a pair trains on (messages, pivots,
  merging, fallback) and soft weights.
- :mod:`~equilibrate.ama.align`: scores as character spans, carried onto any tokenizer's tokens.
- :mod:`~equilibrate.ama.scorers`: the ``segment``, ``implicit`` and ``reward-model`` scorers and
  :func:`score_dataset`.
- :mod:`~equilibrate.ama.trainer`: :class:`AMADPOConfig` and :class:`AMADPOTrainer` (trl).
- :mod:`~equilibrate.ama.viz`: :func:`render_masks_html` and the live :class:`MaskView`.

Names are imported on first use, so ``import equilibrate.ama`` does not load trl or torch models.
"""

from __future__ import annotations

from equilibrate._lazy import lazy_getattr as _lazy_getattr

_EXPORTS = {
    "MaskStats": "masks",
    "message_mask": "masks",
    "message_mask_with_stats": "masks",
    "message_weights": "masks",
    "message_weights_with_stats": "masks",
    "message_runs": "masks",
    "resolve_baseline": "masks",
    "token_scores": "align",
    "token_char_spans": "align",
    "Scorer": "scorers",
    "SegmentScorer": "scorers",
    "ImplicitScorer": "scorers",
    "RewardModelScorer": "scorers",
    "SafetyClassifier": "scorers",
    "ClassifierReport": "scorers",
    "split_messages": "scorers",
    "get_scorer": "scorers",
    "score_dataset": "scorers",
    "AMADPOConfig": "trainer",
    "AMADPOTrainer": "trainer",
    "render_masks_html": "viz",
    "MaskView": "viz",
}

__all__ = sorted(_EXPORTS)


__getattr__ = _lazy_getattr(__name__, _EXPORTS, globals())
