"""The measuring harness: A and B alternated after a warm-up, ratios per pair, the machine's description."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from sweep.core.data import Split, Splits
from sweep.core.epoch import train_epoch
from sweep.core.masks.schedule import MaskSchedule
from sweep.core.models import build_model
from sweep.core.train import Training
from sweep.spec import ModelSpec, TrainSpec

GOALS = {
    "masking_ratio": ("<=", 1.05),
    "data_speedup": (">=", 8.0),
    "egf_overhead": ("<=", 1.05),
    "checkpoint_overhead": ("<=", 1.05),
    "rigl_overhead": ("<=", 1.15),
    "snip_cost": None,  # costs to know, with no goal: once per trial, against an epoch it trains many of
    "grasp_cost": None,
    "synflow_cost": None,
    "ranking_speedup": (">=", 2.0),
    "subnormal_cost": None,  # what subnormal weights would cost; the trainer flushes them
    "sweep_overhead": ("<=", 1.25),
    "tracking_overhead": ("<=", 1.02),
    "peak_fraction": (">=", 0.55),
    "sparse_speedup": (">=", 5.0),
    "resnet_masking": ("<=", 1.10),
    "model_bytes": ("<=", 1.3),
}
# Goals that quick mode's sizes cannot judge: each ratio amortises a fixed cost (the per-epoch work around the
# steps, the 2,048-sample EGF probe, starting Ray and its workers) over the full sizes only.
FULL_SIZE_GOALS = (
    "data_speedup",
    "egf_overhead",
    "checkpoint_overhead",
    "rigl_overhead",
    "peak_fraction",
    "sweep_overhead",
    "tracking_overhead",
)
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


class Trainer:
    """The trainer's model, optimizer and mask enforcer, one training pass at a time."""

    def __init__(self, spec: ModelSpec, splits: Splits, settings: Settings, tcfg: TrainSpec) -> None:
        model = build_model(
            spec, splits.input_shape, splits.num_classes, seed=0, device_type=settings.device.type
        )
        self.model = model.to(settings.device)
        self.training = Training(self.model, tcfg, MaskSchedule())  # the trainer's own: optimizer, schedule
        self.optimizer, self.enforcer = self.training.optimizer, self.training.enforcer
        self.tcfg = tcfg

    def epoch(self, data: Split) -> None:
        train_epoch(self.training, data, 1)


def chunk(splits: Splits, settings: Settings) -> Split:
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
        times_a.append(timed(run_a, settings.device))
        times_b.append(timed(run_b, settings.device))
    return times_a, times_b


def timed(run: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def paired(
    times_a: list[float], times_b: list[float], label_a: str, label_b: str, extra: dict | None = None
) -> Result:
    return Result(
        [a / b for a, b in zip(times_a, times_b, strict=True)],
        {label_a: times_a, label_b: times_b, **(extra or {})},
    )


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


def summary_line(name: str, summary: dict[str, float], quick: bool = False) -> str:
    figures = f"  {name:<19} {summary['min']:7.3f} / {summary['median']:7.3f} / {summary['max']:7.3f}   "
    if GOALS[name] is None:
        return figures + "no goal: a cost to know"
    sign, goal = GOALS[name]
    met = summary["median"] <= goal if sign == "<=" else summary["median"] >= goal
    verdict = "met" if met else "MISSED"
    if quick and name in FULL_SIZE_GOALS:
        verdict = "quick: sizes too small to judge this goal"
    return figures + f"goal {sign} {goal:<5} {verdict}"


def quick_header() -> str:
    """What `--quick` can and cannot show, printed before its figures."""
    return (
        "quick: small sizes and 3 repeats; this shows that every comparison runs and roughly where each "
        f"ratio lies. {', '.join(FULL_SIZE_GOALS)} amortise fixed costs over the full sizes only, so their "
        "goals are not judged here; the other verdicts are indicative (run without --quick for the figures)."
    )


def write_json(record: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(record, indent=2))
