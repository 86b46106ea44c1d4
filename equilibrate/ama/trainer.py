"""AMA-DPO: DPO whose log-ratio sums run over the kept messages only.

For a pair ``(x, y_w, y_l)`` with AMA weights ``m`` (0/1 masks or soft weights in [0, 1]):

``loss = -log sigmoid(beta * (sum_t m_w,t * r_t(y_w) - sum_t m_l,t * r_t(y_l)))``

with ``r_t = log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)``. The same weights multiply the
policy and the reference log-probabilities. With all weights 1 this is trl's DPO loss exactly.

How it sits on trl 1.16's ``DPOTrainer`` (three small overrides, nothing copied):

1. ``_prepare_dataset``: after trl tokenizes prompt/chosen/rejected into ``prompt_ids``,
   ``chosen_ids``, ``rejected_ids``, each completion token gets a score from the dataset's
   character spans (``chosen_spans``/``rejected_spans``, see :mod:`equilibrate.ama.align`),
   stored as ``chosen_token_scores``/``rejected_token_scores``.
2. The data collator is wrapped: besides trl's batch it pads the token scores into
   ``ama_scores`` [2B, T], laid out exactly like ``input_ids`` (chosen rows, then rejected rows;
   zeros on the prompt and padding; truncated like the sequences).
3. ``compute_loss`` pops ``ama_scores``, builds the weights [2B, T] with
   :func:`~equilibrate.ama.masks.message_mask` on trl's ``completion_mask``, and, only for the
   duration of trl's own ``compute_loss``, puts a forward hook on the policy (and the reference
   model if there is a separate one) that multiplies the per-token log-probabilities the fused
   LM head returns (``outputs.log_probs`` [2B, T-1], already shifted: entry ``t`` scores token
   ``t+1``) by ``weights[:, 1:]``. trl then sums them as usual.

Metrics logged besides trl's: ``ama/kept_share`` (weight sum over response tokens) and
``ama/fallback_share`` (responses that kept nothing and trained on all tokens).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from trl import DPOConfig, DPOTrainer

from equilibrate.ama.align import token_scores
from equilibrate.ama.masks import (
    BASELINE_MODES,
    MaskStats,
    message_mask_with_stats,
    message_weights_with_stats,
)
from equilibrate.errors import ConfigError

logger = logging.getLogger(__name__)

SPAN_COLUMNS = ("chosen_spans", "rejected_spans")
TOKEN_SCORE_COLUMNS = ("chosen_token_scores", "rejected_token_scores")
WEIGHTINGS = ("hard", "soft")


@dataclass
class AMADPOConfig(DPOConfig):
    """trl's ``DPOConfig`` plus the AMA settings (all validated; errors name the field).

    Attributes:
        ama_baseline: the baseline ``b``: a number, or ``"batch_mean"`` (the mean token score over
            the chosen and rejected responses of each training batch).
        ama_min_message_tokens: messages shorter than this merge into a neighbour (>= 1).
        ama_weighting: ``"hard"`` (0/1 masks) or ``"soft"`` (sigmoid weights per message).
        ama_temperature: score units per logit for soft weights (> 0).
    """

    ama_baseline: float | str = field(
        default=0.0,
        metadata={"help": "AMA baseline: a number or 'batch_mean'."},
    )
    ama_min_message_tokens: int = field(
        default=1,
        metadata={"help": "Messages shorter than this merge into a neighbour."},
    )
    ama_weighting: str = field(
        default="hard",
        metadata={"help": "'hard' 0/1 message masks or 'soft' weights in [0, 1]."},
    )
    ama_temperature: float = field(
        default=1.0,
        metadata={"help": "Temperature of soft weights (score units)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.ama_baseline, str) and self.ama_baseline not in BASELINE_MODES:
            try:
                self.ama_baseline = float(self.ama_baseline)
            except ValueError:
                raise ConfigError(
                    "ama_baseline",
                    f"expected a number or one of {BASELINE_MODES}, got {self.ama_baseline!r}",
                ) from None
        if not isinstance(self.ama_baseline, str) and self.ama_baseline != self.ama_baseline:
            raise ConfigError("ama_baseline", "expected a number, got NaN")
        if isinstance(self.ama_min_message_tokens, bool) or int(self.ama_min_message_tokens) < 1:
            raise ConfigError(
                "ama_min_message_tokens",
                f"expected an integer >= 1, got {self.ama_min_message_tokens!r}",
            )
        self.ama_min_message_tokens = int(self.ama_min_message_tokens)
        if self.ama_weighting not in WEIGHTINGS:
            raise ConfigError(
                "ama_weighting", f"expected one of {WEIGHTINGS}, got {self.ama_weighting!r}"
            )
        if not float(self.ama_temperature) > 0:
            raise ConfigError(
                "ama_temperature", f"expected a number > 0, got {self.ama_temperature}"
            )
        loss_type = [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)
        if loss_type not in (["sigmoid"], ["sigmoid", "sft"]):
            raise ConfigError(
                "loss_type",
                "AMA-DPO is defined for the 'sigmoid' DPO loss, optionally with the 'sft' term "
                f"on chosen tokens; got {loss_type}",
            )
        if self.precompute_ref_log_probs:
            raise ConfigError(
                "precompute_ref_log_probs",
                "AMA masks the reference log-probabilities per batch; set it to False",
            )
        super().__post_init__()


class AMACollator:
    """Wraps trl's preference collator; adds ``ama_scores`` [2B, T] aligned with ``input_ids``."""

    def __init__(self, base, max_length: int | None, truncation_mode: str = "keep_start") -> None:
        self.base = base
        self.max_length = max_length
        self.truncation_mode = truncation_mode

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [c for c in TOKEN_SCORE_COLUMNS if c not in examples[0]]
        if missing:
            raise ConfigError(
                "train_dataset",
                f"batch has no {missing}; was the dataset prepared by AMADPOTrainer?",
            )
        batch = self.base(
            [{k: v for k, v in ex.items() if k not in TOKEN_SCORE_COLUMNS} for ex in examples]
        )
        rows = []
        for side, column in zip(("chosen_ids", "rejected_ids"), TOKEN_SCORE_COLUMNS, strict=True):
            for ex in examples:
                scores = list(ex[column])
                if len(scores) != len(ex[side]):
                    raise ConfigError(
                        column, f"has {len(scores)} scores for {len(ex[side])} completion tokens"
                    )
                rows.append([0.0] * len(ex["prompt_ids"]) + scores)
        if self.max_length is not None:
            if self.truncation_mode == "keep_end":
                rows = [r[-self.max_length :] for r in rows]
            else:
                rows = [r[: self.max_length] for r in rows]
        width = batch["input_ids"].shape[1]
        out = torch.zeros(len(rows), width, dtype=torch.float32)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
        batch["ama_scores"] = out
        return batch


def _text_of(value: Any) -> str:
    """The response text of a chosen/rejected field (a string or a list of messages)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    raise ConfigError(
        "chosen", f"expected a string or a list of messages, got {type(value).__name__}"
    )


class AMADPOTrainer(DPOTrainer):
    """trl's ``DPOTrainer`` with AMA weights on the per-token log-probabilities.

    Takes the same arguments as ``DPOTrainer``; ``args`` must be an :class:`AMADPOConfig`. The
    training dataset needs ``chosen_spans``/``rejected_spans`` (from
    :func:`equilibrate.ama.scorers.score_dataset`) or ready ``chosen_token_scores``/
    ``rejected_token_scores`` computed with the same tokenizer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(config, AMADPOConfig):
            raise ConfigError("args", "AMADPOTrainer needs an AMADPOConfig")
        self._ama_fallbacks = 0
        self._ama_responses = 0
        super().__init__(*args, **kwargs)
        self.data_collator = AMACollator(
            self.data_collator, self.args.max_length, self.args.truncation_mode
        )

    # -- data ---------------------------------------------------------------------------------
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):  # noqa: D401
        """trl's tokenization, then one score per completion token (see module docstring)."""
        rows_before = len(dataset) if hasattr(dataset, "__len__") else None
        columns = dataset.column_names or []
        if not set(TOKEN_SCORE_COLUMNS) <= set(columns) and not set(SPAN_COLUMNS) <= set(columns):
            raise ConfigError(
                f"{dataset_name}_dataset",
                f"needs columns {list(SPAN_COLUMNS)} (run equilibrate.ama.score_dataset or "
                f"`equilibrate score`); it has {columns}",
            )
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        if rows_before is not None:
            dropped = rows_before - len(dataset)
            if dropped:
                logger.warning(
                    "%s: %d of %d pairs dropped: their prompt alone fills max_length=%s",
                    dataset_name,
                    dropped,
                    rows_before,
                    args.max_length,
                )
            if len(dataset) == 0:
                raise ConfigError(
                    "max_length",
                    f"every prompt of the {dataset_name} dataset is at least {args.max_length} "
                    "tokens long, so no response token would be trained; raise max_length",
                )
        if set(TOKEN_SCORE_COLUMNS) <= set(dataset.column_names or []):
            return dataset
        tokenizer = getattr(processing_class, "tokenizer", processing_class)

        def add_scores(example: dict[str, Any]) -> dict[str, list[float]]:
            return {
                score_col: token_scores(
                    tokenizer, example[ids_col], _text_of(example[text_col]), example[span_col]
                )
                for score_col, ids_col, text_col, span_col in (
                    ("chosen_token_scores", "chosen_ids", "chosen", "chosen_spans"),
                    ("rejected_token_scores", "rejected_ids", "rejected", "rejected_spans"),
                )
            }

        return dataset.map(add_scores, desc=f"Aligning AMA scores ({dataset_name})")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        for column in TOKEN_SCORE_COLUMNS:
            if column not in self._signature_columns:
                self._signature_columns.append(column)

    # -- loss ---------------------------------------------------------------------------------
    def ama_weights(
        self, scores: torch.Tensor, completion_mask: torch.Tensor
    ) -> tuple[torch.Tensor, MaskStats]:
        """AMA weights [2B, T] for a batch laid out as [chosen rows; rejected rows]."""
        half = scores.shape[0] // 2
        chosen = torch.arange(scores.shape[0], device=scores.device) < half
        common = dict(
            baseline=self.args.ama_baseline, min_message_tokens=self.args.ama_min_message_tokens
        )
        if self.args.ama_weighting == "soft":
            return message_weights_with_stats(
                scores, completion_mask, chosen, temperature=self.args.ama_temperature, **common
            )
        return message_mask_with_stats(scores, completion_mask, chosen, **common)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        scores = inputs.pop("ama_scores", None)
        if scores is None:
            raise ConfigError("data_collator", "batch has no 'ama_scores'; keep AMADPOTrainer's")
        completion_mask = inputs["completion_mask"]
        weights, stats = self.ama_weights(scores.to(completion_mask.device), completion_mask)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["ama/kept_share"].append(stats.kept_share)
        self._metrics[mode]["ama/fallback_share"].append(stats.fallback_share)
        if mode == "train":
            self._ama_fallbacks += stats.fallbacks
            self._ama_responses += stats.responses
        shifted = weights[:, 1:]

        def scale_log_probs(_module, _args, output):
            log_probs = getattr(output, "log_probs", None)
            if log_probs is None:
                return output
            w = shifted.to(device=log_probs.device, dtype=log_probs.dtype)
            if log_probs.shape[1] > w.shape[1]:  # prompt-learning PEFT prepends virtual tokens
                pad = w.new_ones(w.shape[0], log_probs.shape[1] - w.shape[1])
                w = torch.cat([pad, w], dim=1)
            output.log_probs = log_probs * w
            return output

        modules = {id(m): m for m in (model, self.model, self.ref_model) if m is not None}
        handles = [m.register_forward_hook(scale_log_probs) for m in modules.values()]
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            for handle in handles:
                handle.remove()

    def train(self, *args: Any, **kwargs: Any):
        result = super().train(*args, **kwargs)
        logger.info(
            "AMA: %d of %d responses kept no message and trained on all tokens (plain DPO)",
            self._ama_fallbacks,
            self._ama_responses,
        )
        return result

    @property
    def ama_fallback_counts(self) -> tuple[int, int]:
        """(fallback responses, responses) seen in training so far."""
        return self._ama_fallbacks, self._ama_responses
