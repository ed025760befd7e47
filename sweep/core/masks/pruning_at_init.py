"""Pruning at initialisation: score every weight of the dense initial network once, keep the highest scores.

- SNIP (Lee et al., 2019): |g ⊙ θ|, g the gradient of the loss on one batch at the dense initial weights.
- GraSP (Wang et al., 2020): θ ⊙ Hg, Hg the Hessian-gradient product (the gradient of gᵀ·stop(g)), with the
  logits divided by a temperature and g from a few samples per class. The paper removes the largest −θ ⊙ Hg,
  so the kept score is θ ⊙ Hg, signed.
- SynFlow (Tanaka et al., 2020): data-free and iterative. Every parameter is replaced by its absolute value,
  one all-ones input goes through the network, R = sum(output), and the score is |θ ⊙ ∂R/∂θ|. Over `rounds`
  rounds the density goes from 1 to the target as d^(k/rounds), rescoring the masked network each round, in
  double precision with batch norm in eval mode.
Higher score = kept, for all three. Scores are taken on a throwaway copy; the trial's own network and random
state are left as they were.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sweep.core.masks.selection import fixed_layers, keep_top, pinned
from sweep.spec.sparsity import SparsitySpec


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    kernels = [layer.kernel for layer in model.weight_layers]
    with _scoring(model):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), kernels)
    return [(g * w).abs().detach() for g, w in zip(grads, kernels, strict=True)]


def grasp_scores(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float
) -> list[torch.Tensor]:
    kernels = [layer.kernel for layer in model.weight_layers]
    with _scoring(model):
        stopped = torch.autograd.grad(F.cross_entropy(model(x) / temperature, y), kernels)
        grads = torch.autograd.grad(F.cross_entropy(model(x) / temperature, y), kernels, create_graph=True)
        product = sum((g * s.detach()).sum() for g, s in zip(grads, stopped, strict=True))
        hessian_grad = torch.autograd.grad(product, kernels)
    return [(w * h).detach() for w, h in zip(kernels, hessian_grad, strict=True)]


def synflow_masks(
    model: nn.Module,
    input_shape: Sequence[int],
    counts: Sequence[int],
    sparsity: SparsitySpec,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """The masks SynFlow's rounds (`sparsity.synflow_rounds`) reach at `counts`: per layer, or their total
    if the scope is global."""
    scope, rounds = sparsity.effective_scope, sparsity.synflow_rounds
    net = copy.deepcopy(model).double().eval()
    fixed = fixed_layers(net)
    kernels = [layer.kernel for layer in net.weight_layers]
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    magnitudes = [k.detach().clone() for k in kernels]
    sizes = [k.numel() for k in kernels]
    masks = [torch.ones_like(m) for m in magnitudes]
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=magnitudes[0].device)
    for k in range(1, rounds + 1):
        with torch.no_grad():
            for kernel, magnitude, mask in zip(kernels, magnitudes, masks, strict=True):
                kernel.copy_(magnitude * mask)
        grads = torch.autograd.grad(net(ones).sum(), kernels)
        scores = pinned([(g * w).abs().detach() for g, w in zip(grads, kernels, strict=True)], fixed)
        share = k / rounds
        if scope == "layer":
            now = [round(size * (count / size) ** share) for size, count in zip(sizes, counts, strict=True)]
        else:
            total = round(sum(sizes) * (sum(counts) / sum(sizes)) ** share)
            now = [total] + [0] * (len(sizes) - 1)  # a global threshold needs only the total
        masks = [m.to(magnitudes[0].device) for m in keep_top(scores, now, scope, generator)]
    return [m.float() for m in masks]


@contextlib.contextmanager
def _scoring(model: nn.Module) -> Iterator[None]:
    """Training mode for batch norm, no dropout, and the caller's random state left untouched."""
    was_training = model.training
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        model.train(was_training)
