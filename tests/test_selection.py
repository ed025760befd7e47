"""Keeping the highest scores (`keep_top`, where every score-based mask method ends): the same weights as
ranking every score by a full sort, ties broken by the seed, a layer the global threshold empties keeps its
best weight, and a score that is no number ranks lowest."""

from __future__ import annotations

import pytest
import torch

from sweep.bench.masks import kept_by_sort
from sweep.core.masks.selection import keep_top, top_k_mask


def scores_with_ties(seed: int) -> list[torch.Tensor]:
    """Three layers of scores drawn from four values (ties at any threshold), and one of distinct values."""
    generator = torch.Generator().manual_seed(seed)
    tied = [torch.randint(0, 4, shape, generator=generator).float() for shape in ((6, 5), (40,), (3, 3, 2))]
    return [*tied, 4 * torch.rand((7, 4), generator=generator)]


def flat(masks: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([m.reshape(-1) for m in masks]).bool()


@pytest.mark.parametrize("seed", range(6))
def test_a_global_threshold_keeps_what_a_full_sort_keeps(seed):
    scores = scores_with_ties(seed)
    counts = [max(1, s.numel() // 2) for s in scores]
    everything = torch.cat([s.reshape(-1) for s in scores])
    expected = kept_by_sort(everything, sum(counts), torch.Generator().manual_seed(seed))
    sizes = [s.numel() for s in scores]
    assert all(int(part.sum()) > 0 for part in expected.split(sizes))  # no layer emptied: the sort rules
    kept = flat(keep_top(scores, counts, "global", torch.Generator().manual_seed(seed)))
    assert torch.equal(kept, expected)
    assert int(kept.sum()) == sum(counts)


@pytest.mark.parametrize("seed", range(6))
def test_each_layer_keeps_its_count_as_a_full_sort_does(seed):
    scores, generator = scores_with_ties(seed), torch.Generator().manual_seed(seed)
    counts = [1, 17, 5, scores[3].numel()]  # one, some, a few, all
    expected = [
        kept_by_sort(score.reshape(-1), count, generator) for score, count in zip(scores, counts, strict=True)
    ]
    kept = keep_top(scores, counts, "layer", torch.Generator().manual_seed(seed))
    for mask, want, score, count in zip(kept, expected, scores, counts, strict=True):
        assert mask.shape == score.shape and int(mask.sum()) == count
        assert torch.equal(mask.reshape(-1).bool(), want)


def test_ties_are_broken_by_the_seed_not_by_position():
    equal = torch.ones(1000)
    first = top_k_mask(equal, 100, torch.Generator().manual_seed(0))
    assert torch.equal(first, top_k_mask(equal, 100, torch.Generator().manual_seed(0)))
    other = top_k_mask(equal, 100, torch.Generator().manual_seed(1))
    assert int(first.sum()) == int(other.sum()) == 100 and not torch.equal(first, other)
    assert int(first[:100].sum()) < 50  # not the first hundred


def test_a_layer_the_global_threshold_empties_keeps_its_best_weight_in_place_of_the_weakest():
    strong = torch.tensor([10.0, 9.0, 8.0, 7.0])
    weak = torch.tensor([1.0, 3.0, 2.0])
    kept = keep_top([strong, weak], [2, 1], "global", torch.Generator().manual_seed(0))
    assert kept[0].tolist() == [1.0, 1.0, 0.0, 0.0]  # 8 would pass the threshold; it gives its place
    assert kept[1].tolist() == [0.0, 1.0, 0.0]  # to the weak layer's best


def test_a_score_that_is_no_number_ranks_lowest():
    nan = float("nan")
    scores = torch.tensor([nan, 1.0, -2.0, nan, 0.5])
    assert top_k_mask(scores, 3, torch.Generator().manual_seed(0)).tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    pinned = torch.full((3,), torch.inf)  # a layer kept dense: it must not lose a place to a NaN
    kept = keep_top(
        [pinned, torch.tensor([nan, 2.0, nan, 1.0])], [3, 2], "global", torch.Generator().manual_seed(0)
    )
    assert kept[0].tolist() == [1.0, 1.0, 1.0] and kept[1].tolist() == [0.0, 1.0, 0.0, 1.0]
