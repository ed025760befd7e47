"""The trainer against what a user writes by hand: masking, the data path, the EGF probe, FLOP/s."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sweep.bench.harness import DEFAULT, REFERENCE, Result, Settings, Trainer, alternate, chunk, paired
from sweep.core.data import ArrayDataset, Split, Splits
from sweep.core.epoch import EVAL_BATCH, evaluate
from sweep.core.gradflow import measure_flow
from sweep.core.optim import make_optimizer
from sweep.spec import TrainSpec


def masking(splits: Splits, settings: Settings) -> Result:
    """The masked trainer's epoch against a plain dense loop over the same batches."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    batches = chunk(splits, settings)
    masked = Trainer(REFERENCE, splits, settings, tcfg)
    plain = plain_mlp(splits).to(settings.device)
    plain_opt = make_optimizer(plain.parameters(), tcfg)
    times_a, times_b = alternate(
        lambda: masked.epoch(batches),
        lambda: plain_epoch(plain, batches, plain_opt, tcfg.batch_size),
        settings,
    )
    return paired(times_a, times_b, "masked trainer s", "plain loop s", {"steps": settings.steps})


def data_path(arrays: ArrayDataset, splits: Splits, settings: Settings) -> Result:
    """A DataLoader with per-sample transforms against the trainer's device-resident batching."""
    from torch.utils.data import DataLoader

    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(DEFAULT, splits, settings, tcfg)
    model, optimizer, enforcer = trainer.model, trainer.optimizer, trainer.enforcer
    batches = chunk(splits, settings)
    loader = DataLoader(
        TorchvisionStyle(arrays, len(batches)), batch_size=tcfg.batch_size, shuffle=True, num_workers=0
    )

    def with_loader() -> None:
        model.train()
        for x, y in loader:
            x, y = x.to(settings.device), y.to(settings.device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            enforcer.mask_gradients()
            optimizer.step()

    times_a, times_b = alternate(with_loader, lambda: trainer.epoch(batches), settings)
    return paired(times_a, times_b, "DataLoader s", "trainer s", {"steps": settings.steps})


def egf_cost(splits: Splits, settings: Settings) -> Result:
    """An epoch (training and test evaluation) with the gradient-flow probe against one without."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(DEFAULT, splits, settings, tcfg)
    probe = Split(splits.train.x[:2048], splits.train.y[:2048])

    def epoch(with_egf: bool) -> None:
        trainer.epoch(splits.train)
        evaluate(trainer.model, splits.test)
        if with_egf:
            measure_flow(trainer.model, probe.x, probe.y, chunk_size=EVAL_BATCH[settings.device.type])

    times_a, times_b = alternate(lambda: epoch(True), lambda: epoch(False), settings)
    return paired(times_a, times_b, "epoch with EGF s", "epoch without EGF s")


def peak(splits: Splits, settings: Settings) -> Result:
    """Achieved FLOP/s of the trainer on the reference MLP against the machine's dense matmul FLOP/s."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(REFERENCE, splits, settings, tcfg)
    layers = trainer.model.weight_layers
    batches = chunk(splits, settings)
    n = len(batches)
    # The usual training count: 6 FLOPs per weight and sample (2 forward, 2 for the weight gradient, 2 for
    # the input gradient). Autograd skips the first layer's input gradient, so the work done is
    # 2 * (3 * weights - first layer) per sample; both counts are recorded.
    all_weights = sum(layer.total_weights for layer in layers)
    active = sum(layer.active_weights for layer in layers)
    flops_all = 6 * n * all_weights
    flops_done = 2 * n * (3 * all_weights - layers[0].total_weights)
    flops_active = 6 * n * active
    size = 1024
    a = torch.randn(size, size, device=settings.device)
    b = torch.randn(size, size, device=settings.device)
    matmuls = 10 if settings.device.type == "cpu" else 1000

    def matmul() -> None:
        for _ in range(matmuls):
            torch.mm(a, b)

    times_train, times_mm = alternate(lambda: trainer.epoch(batches), matmul, settings)
    peak_flops = [matmuls * 2 * size**3 / t for t in times_mm]
    achieved = [flops_all / t for t in times_train]
    return Result(
        ratios=[ach / pk for ach, pk in zip(achieved, peak_flops, strict=True)],
        raw={
            "counted": "6 FLOPs per weight and sample, all weights (the masked backend computes masked ones)",
            "trainer_gflops_done": [flops_done / t / 1e9 for t in times_train],
            "trainer_s": times_train,
            "steps": settings.steps,
            "trainer_gflops_all_weights": [f / 1e9 for f in achieved],
            "trainer_gflops_active_weights": [flops_active / t / 1e9 for t in times_train],
            "matmul_gflops": [f / 1e9 for f in peak_flops],
            "matmul": f"{size}x{size} float32",
        },
    )


def plain_epoch(model: nn.Module, data: Split, optimizer: torch.optim.Optimizer, batch_size: int) -> None:
    """The loop a user writes by hand: shuffled index batches, forward, backward, step."""
    model.train()
    order = torch.randperm(len(data)).to(data.x.device)
    for start in range(0, len(data), batch_size):
        index = order[start : start + batch_size]
        loss = F.cross_entropy(model(data.x[index]), data.y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def plain_mlp(splits: Splits) -> nn.Module:
    inputs = int(np.prod(splits.input_shape))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(inputs, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, splits.num_classes),
    )


class TorchvisionStyle(torch.utils.data.Dataset):
    """Fashion-MNIST as torchvision serves it: a PIL image per sample, then ToTensor and Normalize."""

    def __init__(self, arrays: ArrayDataset, n: int) -> None:
        from torchvision import transforms

        self.images, self.labels = arrays.train_x[:n, 0], arrays.train_y[:n]
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(arrays.mean, arrays.std)]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = Image.fromarray(self.images[index], mode="L")
        return self.transform(image), int(self.labels[index])
