"""Keeping the highest scores: per layer (each layer keeps its own count) or global (one threshold over all
layers, the total kept). Ties are broken by the seed, never by position, and every layer keeps at least one
weight, so no layer is cut off."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def top_k_mask(scores: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """A mask of `scores`' shape with ones at the `count` highest scores (ties in a seeded random order)."""
    chosen, _ = _highest(_flat(scores), count, generator)
    return chosen.float().view(scores.shape)


def fixed_layers(model: torch.nn.Module) -> list[bool]:
    """Which weight layers no mask method changes (those `model.dense_layers` keeps dense)."""
    return [bool(getattr(layer, "fixed", False)) for layer in model.weight_layers]


def pinned(scores: Sequence[torch.Tensor], fixed: Sequence[bool]) -> list[torch.Tensor]:
    """`scores` with every weight of a fixed layer ranked first: kept whatever the scope (its count is its
    size, and a global threshold keeps them before any other)."""
    return [torch.full_like(s, torch.inf) if f else s for s, f in zip(scores, fixed, strict=True)]


def keep_top(
    scores: Sequence[torch.Tensor], counts: Sequence[int], scope: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """Masks keeping the highest scores: `counts[l]` in each layer (`scope: layer`), or `sum(counts)` over
    all layers with one threshold (`scope: global`, at least one weight per layer)."""
    if scope == "layer":
        return [top_k_mask(s, c, generator) for s, c in zip(scores, counts, strict=True)]
    flat = [_flat(s) for s in scores]
    sizes = [f.numel() for f in flat]
    everything = torch.cat(flat)
    layer_of = torch.repeat_interleave(torch.arange(len(flat)), torch.tensor(sizes))
    chosen, shuffle = _highest(everything, sum(counts), generator)
    per_layer = torch.bincount(layer_of[chosen], minlength=len(flat))
    # A layer the threshold empties keeps its best weight, in place of the weakest kept weight of a layer
    # that keeps several.
    for layer in (per_layer == 0).nonzero().flatten().tolist():
        best = _ranked_end(everything, shuffle, layer_of == layer, best=True)
        weakest = _ranked_end(everything, shuffle, chosen & (per_layer[layer_of] > 1), best=False)
        chosen[weakest], chosen[best] = False, True
        per_layer[layer_of[weakest]] -= 1
        per_layer[layer] += 1
    masks = chosen.float().split(sizes)
    return [m.view(s.shape) for m, s in zip(masks, scores, strict=True)]


def _flat(scores: torch.Tensor) -> torch.Tensor:
    """Scores as one row of doubles on the CPU."""
    return scores.detach().reshape(-1).double().cpu()


def _highest(
    values: torch.Tensor, count: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which `count` of `values` rank highest, equal values taken in the order of a seeded shuffle of the
    indices (returned too), and a NaN above every number, as a sort ranks it. A selection at the count's
    threshold, not a sort of everything: a ResNet's global ranking holds millions of weights."""
    size = values.numel()
    shuffle = torch.randperm(size, generator=generator)
    if count >= size or count <= 0:
        return torch.full((size,), count > 0), shuffle
    nan = values.isnan()
    nans = int(nan.sum())
    if count <= nans:
        chosen = torch.zeros(size, dtype=torch.bool)
        chosen[_in_shuffle_order(nan, shuffle)[:count]] = True
        return chosen, shuffle
    threshold = torch.kthvalue(values[~nan] if nans else values, size - count + 1).values
    chosen, tied = (values > threshold) | nan, values == threshold
    wanted = count - int(chosen.sum())
    if wanted == int(tied.sum()):  # no tie to break (the common case for real-valued scores)
        return chosen | tied, shuffle
    chosen[_in_shuffle_order(tied, shuffle)[:wanted]] = True
    return chosen, shuffle


def _ranked_end(values: torch.Tensor, shuffle: torch.Tensor, among: torch.Tensor, best: bool) -> int:
    """The index of the best-ranked (or worst-ranked) value `among` selects: the highest value (a NaN above
    every number), the first in the shuffle among equals (or the lowest value, the last in the shuffle)."""
    nan = among & values.isnan()
    numbers = among & ~nan
    if (best and nan.any()) or not numbers.any():
        ends = nan
    else:
        ranked = values[numbers]
        ends = numbers & (values == (ranked.max() if best else ranked.min()))
    order = _in_shuffle_order(ends, shuffle)
    return int(order[0] if best else order[-1])


def _in_shuffle_order(which: torch.Tensor, shuffle: torch.Tensor) -> torch.Tensor:
    """The indices `which` selects, in the order they come in `shuffle`."""
    return shuffle[which[shuffle]]
