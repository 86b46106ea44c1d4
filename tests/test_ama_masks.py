"""AMA message masks against cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from equilibrate.ama.align import fill_gaps
from equilibrate.ama.masks import (
    message_mask,
    message_mask_with_stats,
    message_runs,
    message_weights,
    resolve_baseline,
)
from equilibrate.errors import ConfigError


def _row(values: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.tensor([values], dtype=torch.float32)
    return scores, torch.ones_like(scores)


def test_pivots_split_chosen_and_rejected():
    # sides + + - - +: two pivots (index 2 and 4)
    scores, resp = _row([2.0, 1.0, -1.0, -3.0, 0.5])
    assert message_mask(scores, resp, True).tolist() == [[1, 1, 0, 0, 1]]
    assert message_mask(scores, resp, False).tolist() == [[0, 0, 1, 1, 0]]


def test_token_at_baseline_is_kept_on_both_sides():
    scores, resp = _row([1.0, 0.0, -1.0])
    assert message_mask(scores, resp, True).tolist() == [[1, 1, 0]]
    assert message_mask(scores, resp, False).tolist() == [[0, 1, 1]]
    # the same with a non-zero baseline: 0.5 is the tie now
    scores, resp = _row([1.0, 0.5, -1.0])
    assert message_mask(scores, resp, True, baseline=0.5).tolist() == [[1, 1, 0]]


def test_short_messages_merge_shortest_first_into_longer_neighbour():
    # runs (0,1,+) (1,4,-) (4,6,+) (6,7,-); both length-1 runs are short.
    # First the leftmost (0,1,+): its only neighbour is '-', so 0..4 is '-'.
    # Then (6,7,-): its only neighbour is '+', so 4..7 is '+'.
    assert message_runs([1, -1, -1, -1, 1, 1, -1], 2) == [(0, 4, -1), (4, 7, 1)]
    scores, resp = _row([1.0, -1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
    assert message_mask(scores, resp, True, min_message_tokens=2).tolist() == [
        [0, 0, 0, 0, 1, 1, 1]
    ]
    assert message_mask(scores, resp, False, min_message_tokens=2).tolist() == [
        [1, 1, 1, 1, 0, 0, 0]
    ]


def test_merge_ties_between_neighbours_go_left():
    # '+' of length 1 between two '-' runs of length 2: equal neighbours, the left one wins
    assert message_runs([-1, -1, 1, -1, -1], 2) == [(0, 5, -1)]
    # a neutral run between '+' and '-' shows which neighbour it joins:
    # the longer one, the left one when both are equally long
    assert message_runs([1, 1, 0, -1, -1, -1], 2) == [(0, 2, 1), (2, 6, -1)]
    assert message_runs([1, 1, 1, 0, -1, -1], 2) == [(0, 4, 1), (4, 6, -1)]
    assert message_runs([1, 1, 0, -1, -1], 2) == [(0, 3, 1), (3, 5, -1)]
    # the merged run can become short itself only if it was: (0,1) joins '+', then the
    # 3-token '-' run is still shorter than 4 and joins the 5-token '+' run
    assert message_runs([-1, 1, 1, 1, 1, -1, -1, -1], 4) == [(0, 8, 1)]


def test_shortest_run_merges_first():
    # (0,1,-) and (1,2,+) are both short; the leftmost goes first and joins '+',
    # after which (0,2,+) and (2,4,-) are long enough.
    assert message_runs([-1, 1, -1, -1], 2) == [(0, 2, 1), (2, 4, -1)]


def test_min_message_tokens_one_changes_nothing():
    sides = [1, -1, 0, 0, 1]
    assert message_runs(sides, 1) == [(0, 1, 1), (1, 2, -1), (2, 4, 0), (4, 5, 1)]
    with pytest.raises(ConfigError, match="min_message_tokens"):
        message_runs(sides, 0)


def test_padding_on_both_sides_is_zero_and_ignored():
    scores = torch.tensor([[5.0, -1.0, 1.0, 1.0, -5.0]])
    resp = torch.tensor([[0, 1, 1, 1, 0]])
    assert message_mask(scores, resp, True).tolist() == [[0, 0, 1, 1, 0]]
    assert message_mask(scores, resp, False).tolist() == [[0, 1, 0, 0, 0]]
    # merging sees only the response: the -1 run is short and joins the '+' run
    assert message_mask(scores, resp, True, min_message_tokens=2).tolist() == [[0, 1, 1, 1, 0]]


def test_empty_response_falls_back_to_all_tokens_and_is_counted():
    scores = torch.tensor([[0.0, -1.0, -2.0, 0.0], [0.0, 3.0, 1.0, 0.0]])
    resp = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 1]])
    mask, stats = message_mask_with_stats(scores, resp, torch.tensor([True, True]))
    # row 0 keeps nothing above 0, so all its response tokens; row 1 keeps its '+' and the tie
    assert mask.tolist() == [[0, 1, 1, 0], [0, 1, 1, 1]]
    assert stats.fallbacks == 1 and stats.responses == 2
    assert stats.response_tokens == 5 and stats.kept_tokens == 5.0
    assert stats.kept_share == 1.0 and stats.fallback_share == 0.5


def test_row_without_response_is_not_a_fallback():
    scores = torch.tensor([[1.0, -1.0]])
    mask, stats = message_mask_with_stats(scores, torch.zeros(1, 2), True)
    assert mask.tolist() == [[0, 0]]
    assert stats.fallbacks == 0 and stats.responses == 0 and stats.kept_share == 1.0


def test_per_row_chosen_flags_and_kept_share():
    scores = torch.tensor([[1.0, -1.0, -1.0, 2.0], [1.0, -1.0, -1.0, 2.0]])
    resp = torch.ones(2, 4)
    mask, stats = message_mask_with_stats(scores, resp, [True, False])
    assert mask.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    assert stats.kept_share == 0.5


def test_batch_mean_baseline():
    # mean over response tokens only: (1 + 2 + 6) / 3 = 3; padding value 100 is ignored
    scores = torch.tensor([[1.0, 2.0, 6.0, 100.0]])
    resp = torch.tensor([[1, 1, 1, 0]])
    assert resolve_baseline(scores, resp, "batch_mean") == pytest.approx(3.0)
    assert message_mask(scores, resp, True, baseline="batch_mean").tolist() == [[0, 0, 1, 0]]
    with pytest.raises(ConfigError, match="baseline"):
        resolve_baseline(scores, resp, "median")


def test_soft_weights_by_message_mean():
    # messages (0,2) mean 2 and (2,3) mean -1; weights sigmoid(+-(m - 0) / 1)
    scores, resp = _row([3.0, 1.0, -1.0])
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    chosen = message_weights(scores, resp, True)
    assert chosen[0].tolist() == pytest.approx([sig(2), sig(2), sig(-1)], abs=1e-6)
    rejected = message_weights(scores, resp, False, temperature=0.5)
    assert rejected[0].tolist() == pytest.approx([sig(-4), sig(-4), sig(2)], abs=1e-6)


def test_soft_weights_fall_back_like_the_hard_mask():
    scores, resp = _row([-1.0, -2.0])
    assert message_weights(scores, resp, True).tolist() == [[1.0, 1.0]]
    with pytest.raises(ConfigError, match="temperature"):
        message_weights(scores, resp, True, temperature=0.0)


def test_shape_errors_name_the_field():
    with pytest.raises(ConfigError, match="response_mask"):
        message_mask(torch.zeros(2, 3), torch.zeros(2, 4), True)
    with pytest.raises(ConfigError, match="chosen"):
        message_mask(torch.zeros(2, 3), torch.zeros(2, 3), [True])


def test_fill_gaps_takes_previous_then_next():
    assert fill_gaps([None, 1.0, None, -2.0, None]) == [1.0, 1.0, 1.0, -2.0, -2.0]
    assert fill_gaps([None, None]) == [0.0, 0.0]
