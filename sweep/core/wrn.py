"""The CIFAR Wide ResNet of Zagoruyko and Komodakis (2016), WRN-depth-k, as most pruning papers train it.

A 3×3 stem of 16 channels, then three groups of `(depth - 4) / 6` pre-activation basic blocks (BN, ReLU, 3×3
conv, twice; dropout between the convs when asked) of 16k, 32k and 64k channels, the second and third groups
starting with stride 2; a 1×1 conv on the shortcut wherever the width or the stride changes; then BN, ReLU,
global average pooling and a linear classifier. Plain PyTorch: the project masks its layers in place like any
other model's (`sweep.core.masked_model`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

STEM_WIDTH = 16


class BasicBlock(nn.Module):
    """Pre-activation: x + conv(relu(bn(conv(relu(bn(x)))))), with a 1×1 conv shortcut when shapes change."""

    def __init__(self, inputs: int, outputs: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inputs)
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        changes = inputs != outputs or stride != 1
        self.shortcut = nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False) if changes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + skip


class WideResNet(nn.Module):
    """WRN-`depth`-`widen_factor` for images of `input_shape` (C, H, W)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 28,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth {depth}: a Wide ResNet has depth 6n + 4 (10, 16, 22, 28, 40, ...)")
        if widen_factor < 1:
            raise ValueError(f"widen_factor {widen_factor}: must be at least 1")
        blocks = (depth - 4) // 6
        widths = [STEM_WIDTH * widen_factor * 2**group for group in range(3)]
        self.stem = nn.Conv2d(input_shape[0], STEM_WIDTH, 3, padding=1, bias=False)
        layers, inputs = [], STEM_WIDTH
        for group, width in enumerate(widths):
            for index in range(blocks):
                stride = 2 if group > 0 and index == 0 else 1
                layers.append(BasicBlock(inputs, width, stride, dropout))
                inputs = width
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(inputs)
        self.fc = nn.Linear(inputs, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))
