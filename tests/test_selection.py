"""Keeping the highest scores (`keep_top`, where every score-based mask method ends): the same weights as
ranking every score by a full sort (ties broken by the seed, a NaN first, as the sort puts it), and a layer
the global threshold empties keeps its best weight."""

from __future__ import annotations

import pytest
import torch

from sweep.bench.masks import kept_by_sort
from sweep.core.masks.selection import keep_top, top_k_mask


def scores_with_ties(seed: int) -> list[torch.Tensor]:
    """Three layers of scores drawn from four values (ties at any threshold), one of distinct values, and a
    weak one with NaNs and ties, which a global threshold may empty."""
    generator = torch.Generator().manual_seed(seed)
    tied = [torch.randint(0, 4, shape, generator=generator).float() for shape in ((6, 5), (40,), (3, 3, 2))]
    weak = torch.randint(0, 2, (9,), generator=generator).float() - 3
    weak[torch.rand(9, generator=generator) < 0.2] = float("nan")
    return [*tied, 4 * torch.rand((7, 4), generator=generator), weak]


def flat(masks: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([m.reshape(-1) for m in masks]).bool()


def kept_by_ranking_all(scores: list[torch.Tensor], counts: list[int], seed: int) -> torch.Tensor:
    """The global rule written out on a full ranking: the total's best, then each layer left empty keeps its
    best weight in place of the lowest-ranked kept weight of a layer that keeps several."""
    values = torch.cat([s.reshape(-1).double() for s in scores])
    layer_of = [i for i, s in enumerate(scores) for _ in range(s.numel())]
    shuffle = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed))
    order = shuffle[torch.argsort(values[shuffle], descending=True, stable=True)].tolist()
    kept = order[: sum(counts)]
    per_layer = [sum(layer_of[i] == layer for i in kept) for layer in range(len(scores))]
    for layer in [layer for layer, count in enumerate(per_layer) if count == 0]:
        best = next(i for i in order if layer_of[i] == layer)
        weakest = next(i for i in reversed(kept) if per_layer[layer_of[i]] > 1)
        kept = [i for i in kept if i != weakest] + [best]
        per_layer[layer_of[weakest]] -= 1
        per_layer[layer] += 1
    chosen = torch.zeros(len(values), dtype=torch.bool)
    chosen[kept] = True
    return chosen


@pytest.mark.parametrize("seed", range(12))
def test_a_global_threshold_keeps_what_a_full_ranking_keeps(seed):
    scores = scores_with_ties(seed)
    counts = [max(1, s.numel() // 2) for s in scores]
    kept = flat(keep_top(scores, counts, "global", torch.Generator().manual_seed(seed)))
    assert torch.equal(kept, kept_by_ranking_all(scores, counts, seed))
    assert int(kept.sum()) == sum(counts)
    everything = torch.cat([s.reshape(-1) for s in scores])  # the plain sort, the bench's other side, too:
    plain = kept_by_sort(everything, sum(counts), torch.Generator().manual_seed(seed))
    emptied = any(int(part.sum()) == 0 for part in plain.split([s.numel() for s in scores]))
    assert torch.equal(kept, plain) != emptied  # the same weights, unless a layer is left to keep one


@pytest.mark.parametrize("seed", range(6))
def test_each_layer_keeps_its_count_as_a_full_sort_does(seed):
    scores, generator = scores_with_ties(seed), torch.Generator().manual_seed(seed)
    counts = [1, 17, 5, scores[3].numel(), 4]  # one, some, a few, all, some with NaNs
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


def test_a_score_that_is_no_number_ranks_first_as_a_sort_ranks_it():
    nan = float("nan")
    scores = torch.tensor([nan, 1.0, -2.0, nan, 0.5])
    kept = top_k_mask(scores, 3, torch.Generator().manual_seed(0))
    assert kept.tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert torch.equal(kept.bool(), kept_by_sort(scores, 3, torch.Generator().manual_seed(0)))
