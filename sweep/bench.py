"""`sweep bench`: the trainer and the sweep layer against what a user would otherwise write.

Every comparison runs its two sides in this one process, alternating A and B several times after a warm-up,
and reports the ratio of each pair as min / median / max, plus the absolute times for the record:
- masking_ratio  = masked trainer epoch / plain dense PyTorch loop epoch (same model shape, data, optimizer);
- data_speedup   = torchvision DataLoader epoch (ToTensor + Normalize per sample) / trainer epoch;
- egf_overhead   = epoch with the EGF probe / epoch without it (both evaluate the test set);
- sweep_overhead = `sweep run` wall on an embedded Ray / (the same trials' serial time / parallel workers);
- peak_fraction  = the trainer's FLOP/s on the reference MLP (784-300-100-10, batch 128, all weights counted)
                   / this machine's dense matmul FLOP/s at the same dtype;
- sparse_speedup = masked-backend epoch / `backend: auto` epoch for the SC-SDC MLP of ratio 0.1 (width 3076,
                   4 hidden layers, hidden-to-hidden layers 1% dense).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sweep.data import ArrayDataset, Split, Splits, load_arrays, make_splits
from sweep.gradflow import measure_flow
from sweep.layers import MaskEnforcer, calibration_path, sparse_threshold, to_sparse
from sweep.models import build_model
from sweep.spec import DatasetSpec, ModelSpec, TrainSpec, parse_spec
from sweep.train import EVAL_BATCH, evaluate, make_optimizer, train_epoch

GOALS = {
    "masking_ratio": ("<=", 1.05),
    "data_speedup": (">=", 8.0),
    "egf_overhead": ("<=", 1.05),
    "sweep_overhead": ("<=", 1.25),
    "peak_fraction": (">=", 0.55),
    "sparse_speedup": (">=", 5.0),
}
# The paper's MLP at 10% density: on the masked backend where masking itself is measured, and as the trainer
# runs it by default (`backend: auto`) where the rest of the epoch is.
REFERENCE = ModelSpec(widths=(300, 100), densities=0.1, backend="masked")
DEFAULT = ModelSpec(widths=(300, 100), densities=0.1)


@dataclass
class Result:
    ratios: list[float]
    raw: dict

    def summary(self) -> dict[str, float]:
        return {"min": min(self.ratios), "median": statistics.median(self.ratios), "max": max(self.ratios)}


@dataclass(frozen=True)
class Settings:
    device: torch.device
    quick: bool

    @property
    def repeats(self) -> int:
        """Alternations of A and B; many short ones, so both sides meet the same machine noise."""
        return 3 if self.quick else 31

    @property
    def steps(self) -> int:
        """Training steps (batch 128) in one timed sample of a per-step comparison."""
        return 10 if self.quick else 60

    @property
    def train_samples(self) -> int | None:
        """The training set of the whole-epoch comparison (EGF), all of Fashion-MNIST unless quick."""
        return 3000 if self.quick else None


def run_bench(
    device: str = "cpu",
    quick: bool = False,
    echo: Callable[[str], None] = print,
    only: list[str] | None = None,
) -> dict:
    """Run every comparison (or those in `only`) and return the JSON-ready record."""
    settings = Settings(torch.device(device), quick)
    if settings.device.type == "cuda" and not torch.cuda.is_available():
        from sweep.errors import UserError

        raise UserError("--device cuda: no CUDA device is visible here")
    arrays = load_arrays(DatasetSpec(name="fashion_mnist"))
    splits = make_splits(arrays, DatasetSpec(subset=settings.train_samples), seed=0, device=settings.device)
    benches: dict[str, Callable[[], Result]] = {
        "masking_ratio": lambda: masking(splits, settings),
        "data_speedup": lambda: data_path(arrays, splits, settings),
        "egf_overhead": lambda: egf_cost(splits, settings),
        "peak_fraction": lambda: peak(splits, settings),
        "sparse_speedup": lambda: sparse_speed(splits, settings),
        "sweep_overhead": lambda: sweep_cost(settings),
    }
    record: dict = {"machine": machine(settings.device), "quick": quick, "raw": {}}
    if not only or "sparse_speedup" in only:
        echo("calibrating the sparse-kernel threshold ...")
        record["calibration"] = calibrate(settings)
        echo(
            f"  backend auto: sparse kernels below density {record['calibration']['threshold']:g} "
            f"on {settings.device.type}" + ("" if quick else f" (recorded in {calibration_path()})")
        )
    for name, bench in benches.items():
        if only and name not in only:
            continue
        echo(f"measuring {name} ...")
        result = bench()
        record[name] = result.summary()
        record["raw"][name] = result.raw
        echo(_line(name, record[name]))
    return record


# ----------------------------------------------------------------------------------------- comparisons


def masking(splits: Splits, settings: Settings) -> Result:
    """The masked trainer's epoch against a plain dense loop over the same batches."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    chunk = _chunk(splits, settings)
    masked = Trainer(REFERENCE, splits, settings, tcfg)
    plain = _plain_mlp(splits).to(settings.device)
    plain_opt = make_optimizer(plain.parameters(), tcfg)
    times_a, times_b = alternate(
        lambda: masked.epoch(chunk),
        lambda: plain_epoch(plain, chunk, plain_opt, tcfg.batch_size),
        settings,
    )
    return _result(times_a, times_b, "masked trainer s", "plain loop s", {"steps": settings.steps})


def data_path(arrays: ArrayDataset, splits: Splits, settings: Settings) -> Result:
    """A DataLoader with per-sample transforms against the trainer's device-resident batching."""
    from torch.utils.data import DataLoader

    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(DEFAULT, splits, settings, tcfg)
    model, optimizer, enforcer = trainer.model, trainer.optimizer, trainer.enforcer
    chunk = _chunk(splits, settings)
    loader = DataLoader(
        TorchvisionStyle(arrays, len(chunk)), batch_size=tcfg.batch_size, shuffle=True, num_workers=0
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

    times_a, times_b = alternate(with_loader, lambda: trainer.epoch(chunk), settings)
    return _result(times_a, times_b, "DataLoader s", "trainer s", {"steps": settings.steps})


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
    return _result(times_a, times_b, "epoch with EGF s", "epoch without EGF s")


def peak(splits: Splits, settings: Settings) -> Result:
    """Achieved FLOP/s of the trainer on the reference MLP against the machine's dense matmul FLOP/s."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(REFERENCE, splits, settings, tcfg)
    layers = trainer.model.weight_layers
    chunk = _chunk(splits, settings)
    n = len(chunk)
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

    times_train, times_mm = alternate(lambda: trainer.epoch(chunk), matmul, settings)
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


def sparse_speed(splits: Splits, settings: Settings) -> Result:
    """The SC-SDC MLP of ratio 0.1 (width 3076, 4 hidden layers): masked backend against `auto`."""
    width, dense = 3076, 308
    share = dense / width
    densities = (share, share * share, share * share, share * share, share)
    samples = 512 if settings.quick else 4096
    subset = Split(splits.train.x[:samples], splits.train.y[:samples])
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    masked, auto = (
        Trainer(ModelSpec(widths=(width,) * 4, densities=densities, backend=b), splits, settings, tcfg)
        for b in ("masked", "auto")
    )
    times_masked, times_auto = alternate(
        lambda: masked.epoch(subset),
        lambda: auto.epoch(subset),
        settings,
        repeats=3 if settings.quick else 5,  # each masked epoch takes seconds here
    )
    backends = [layer.backend for layer in auto.model.weight_layers]
    return _result(
        times_masked,
        times_auto,
        "masked s/epoch",
        "auto s/epoch",
        extra={"samples": len(subset), "auto_backends": backends},
    )


def calibrate(settings: Settings) -> dict:
    """Where sparse kernels start to pay: one 3076x3076 layer, batch 128, forward and both backward products.

    The threshold is the highest density at which the sparse layer is at least 10% faster than the masked
    one. A full run records it for `backend: auto` on this device; a quick run only reports it.
    """
    size, batch = (1024, 64) if settings.quick else (3076, 128)
    densities = (0.01, 0.05, 0.2) if settings.quick else (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
    x = torch.randn(batch, size, device=settings.device, requires_grad=True)
    grad = torch.randn(batch, size, device=settings.device)
    timings = {}

    def step(layer: nn.Module, enforcer: MaskEnforcer | None = None) -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)
        if enforcer is not None:
            enforcer.mask_gradients()

    for density in densities:
        spec = ModelSpec(widths=(size,), densities=(density, 1.0), backend="masked")
        masked = (
            build_model(spec, (1, 1, size), size, seed=0, device_type=settings.device.type)
            .weight_layers[0]
            .to(settings.device)
        )
        sparse = to_sparse(masked).to(settings.device)
        times_m, times_s = alternate(
            lambda m=masked: step(m, MaskEnforcer([m])), lambda s=sparse: step(s), settings, repeats=3
        )
        timings[density] = {"masked_s": statistics.median(times_m), "sparse_s": statistics.median(times_s)}
    faster = [d for d, t in timings.items() if t["sparse_s"] < 0.9 * t["masked_s"]]
    threshold = max(faster) * 1.01 if faster else min(densities) / 2
    result = {
        "device": settings.device.type,
        "threshold": threshold,
        "layer": f"{size}x{size}",
        "batch": batch,
        "timings": {str(d): t for d, t in timings.items()},
    }
    if not settings.quick:
        path = calibration_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved[settings.device.type] = {**result, "machine": machine(settings.device)}
        path.write_text(json.dumps(saved, indent=2))
        sparse_threshold.cache_clear()
    return result


def sweep_cost(settings: Settings) -> Result:
    """N short trials through `sweep run` (embedded Ray) against the same trials run serially here.

    Full: 16 trials of about 5 s each (SC-SDC pairs of width 300 on all of Fashion-MNIST, 4 epochs). The
    serial side loads the data once and trains each trial with the threads a worker gets. The fixed cost of
    starting Ray, its workers and torch in them is part of the sweep's wall and is recorded apart as well.
    """
    from sweep.sc_sdc import sc_sdc_trials
    from sweep.train import train_trial
    from sweep.tune import run_sweep

    epochs = 1 if settings.quick else 4
    spec = parse_spec(
        {
            "name": "bench-sweep",
            "kind": "sc_sdc",
            "dataset": {"name": "fashion_mnist", "subset": 3000 if settings.quick else None},
            "train": {"optimizer": "momentum", "lr": 0.05, "epochs": epochs},
            "grid": {
                "sparse_width": 300,
                "ratios": [0.25, 0.5],
                "depths": [1],
                "seeds": [0] if settings.quick else [0, 1, 2, 3],
            },
            "resources": {"cpu": 1},
        }
    )
    planned = sc_sdc_trials(spec)
    workers = max(1, min(len(planned), (os.cpu_count() or 1) // int(spec.resources.cpu)))
    threads = torch.get_num_threads()
    startup: list[float] = []

    def serial() -> None:
        torch.set_num_threads(int(spec.resources.cpu))  # as each Ray worker trains
        try:
            arrays = load_arrays(spec.dataset)
            for item in planned:
                train_trial(item.config, data=arrays)
        finally:
            torch.set_num_threads(threads)

    def through_ray() -> None:
        with tempfile.TemporaryDirectory() as results:
            began = time.time()
            result = run_sweep(spec, results, echo=lambda _: None)
            startup.append(min(row["started_at"].timestamp() for row in result.trials) - began)

    reps = 1 if settings.quick else 3
    times_serial, times_ray = alternate(serial, through_ray, settings, repeats=reps, warmup=False)
    return Result(
        ratios=[ray / (ser / workers) for ray, ser in zip(times_ray, times_serial, strict=True)],
        raw={
            "trials": len(planned),
            "workers": workers,
            "epochs": epochs,
            "sweep_wall_s": times_ray,
            "serial_s": times_serial,
            "until_first_trial_s": startup,
            "after_first_trial_ratio": [  # the same ratio without the fixed start (Ray, its workers, torch)
                (ray - start) / (ser / workers)
                for ray, start, ser in zip(times_ray, startup, times_serial, strict=True)
            ],
        },
    )


# -------------------------------------------------------------------------------------------- helpers


class Trainer:
    """The trainer's model, optimizer and mask enforcer, one training pass at a time."""

    def __init__(self, spec: ModelSpec, splits: Splits, settings: Settings, tcfg: TrainSpec) -> None:
        model = build_model(
            spec, splits.input_shape, splits.num_classes, seed=0, device_type=settings.device.type
        )
        self.model = model.to(settings.device)
        self.optimizer = make_optimizer(self.model.parameters(), tcfg)
        self.enforcer = MaskEnforcer(self.model.weight_layers)
        self.tcfg = tcfg

    def epoch(self, data: Split) -> None:
        train_epoch(self.model, data, self.optimizer, self.enforcer, self.tcfg, 1)


def _chunk(splits: Splits, settings: Settings) -> Split:
    samples = settings.steps * 128
    return Split(splits.train.x[:samples], splits.train.y[:samples])


def alternate(
    run_a: Callable[[], object],
    run_b: Callable[[], object],
    settings: Settings,
    repeats: int | None = None,
    warmup: bool = True,
) -> tuple[list[float], list[float]]:
    """Time A and B in turn (A, B, A, B, ...) after one untimed warm-up of each."""
    if warmup:
        run_a()
        run_b()
    times_a, times_b = [], []
    for _ in range(repeats or settings.repeats):
        times_a.append(_timed(run_a, settings.device))
        times_b.append(_timed(run_b, settings.device))
    return times_a, times_b


def _timed(run: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _result(
    times_a: list[float], times_b: list[float], label_a: str, label_b: str, extra: dict | None = None
) -> Result:
    return Result(
        [a / b for a, b in zip(times_a, times_b, strict=True)],
        {label_a: times_a, label_b: times_b, **(extra or {})},
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


def _plain_mlp(splits: Splits) -> nn.Module:
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


def machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }


def _line(name: str, summary: dict[str, float]) -> str:
    sign, goal = GOALS[name]
    met = summary["median"] <= goal if sign == "<=" else summary["median"] >= goal
    return (
        f"  {name:<15} {summary['min']:7.3f} / {summary['median']:7.3f} / {summary['max']:7.3f}   "
        f"goal {sign} {goal:<5} {'met' if met else 'MISSED'}"
    )


def write_json(record: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(record, indent=2))
