"""Keeping the highest scores: per layer (each layer keeps its own count) or global (one threshold over all
layers, the total kept). Ties are broken by the seed, never by position, and every layer keeps at least one
weight, so no layer is cut off."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def top_k_mask(scores: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """A mask of `scores`' shape with ones at the `count` highest scores (ties in a seeded random order)."""
    flat = scores.detach().reshape(-1).double().cpu()
    order = _ranked(flat, generator)
    mask = torch.zeros(flat.numel())
    mask[order[:count]] = 1.0
    return mask.view(scores.shape)


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
    flat = [s.detach().reshape(-1).double().cpu() for s in scores]
    layer_of = torch.cat([torch.full((f.numel(),), i) for i, f in enumerate(flat)])
    everything = torch.cat(flat)
    order = _ranked(everything, generator)
    kept = order[: sum(counts)].tolist()
    per_layer = torch.bincount(layer_of[kept], minlength=len(flat)).tolist()
    for layer, count in enumerate(per_layer):  # a layer the threshold empties keeps its best weight,
        if count == 0:  # in place of the weakest kept weight of a layer that keeps several
            best = next(int(i) for i in order if layer_of[i] == layer)
            weakest = next(i for i in reversed(kept) if per_layer[int(layer_of[i])] > 1)
            kept.remove(weakest)
            kept.append(best)
            per_layer[int(layer_of[weakest])] -= 1
            per_layer[layer] += 1
    chosen = torch.zeros(everything.numel())
    chosen[kept] = 1.0
    masks = chosen.split([f.numel() for f in flat])
    return [m.view(s.shape) for m, s in zip(masks, scores, strict=True)]


def _ranked(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices of `values` from highest to lowest; equal values in an order drawn from the generator."""
    shuffle = torch.randperm(values.numel(), generator=generator)
    order = torch.argsort(values[shuffle], descending=True, stable=True)
    return shuffle[order]
