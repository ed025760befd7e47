"""The sweep layer: trials through `sweep run` on an embedded Ray against the same trials run serially."""

from __future__ import annotations

import os
import tempfile
import time

import torch

from sweep.bench.harness import Result, Settings, timed
from sweep.core.data import load_arrays
from sweep.core.train import train_trial
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.spec import SweepSpec, parse_spec


def bench_spec(settings: Settings, seeds: int = 4) -> SweepSpec:
    """The fixed workload: SC-SDC pairs of width 300 (2 ratios, depth 1) on Fashion-MNIST, `seeds` seeds of
    4 epochs on all of it; quick: one pair (one ratio, one seed), one epoch on 3,000 samples."""
    return parse_spec(
        {
            "name": "bench-sweep",
            "kind": "sc_sdc",
            "dataset": {"name": "fashion_mnist", "subset": 3000 if settings.quick else None},
            "train": {"optimizer": "momentum", "lr": 0.05, "epochs": 1 if settings.quick else 4},
            "grid": {
                "sparse_width": 300,
                "ratios": [0.5] if settings.quick else [0.25, 0.5],
                "depths": [1],
                "seeds": list(range(1 if settings.quick else seeds)),
            },
            "resources": {"cpu": 1},
        }
    )


def sweep_cost(settings: Settings) -> Result:
    """N short trials through `sweep run` (embedded Ray) against the same trials run serially here.

    Full: 16 trials of about 5 s each (SC-SDC pairs of width 300 on all of Fashion-MNIST, 4 epochs). The
    serial side loads the data once and trains each trial with the threads a worker gets. The fixed cost of
    starting Ray, its workers and torch in them is part of the sweep's wall and is recorded apart as well,
    and so is the floor of that cost, measured in each repeat with nothing of this package (`engine_floor`):
    `floor_ratio` is the lowest sweep_overhead that a sweep starting its own embedded Ray could have here.
    """
    from sweep.engine.driver import run_sweep  # loads Ray: only when this comparison runs
    from sweep.engine.floor import engine_floor

    spec = bench_spec(settings)
    epochs = spec.train.epochs
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

    if not settings.quick:  # untimed: a process's first Ray start also makes its first imports of Tune's run
        engine_floor(workers)
    times_serial, times_ray, floors = [], [], []
    for _ in range(1 if settings.quick else 3):
        floors.append(engine_floor(workers))
        times_serial.append(timed(serial, settings.device))
        times_ray.append(timed(through_ray, settings.device))
    ideal = [ser / workers for ser in times_serial]  # the serial time spread evenly over the workers
    return Result(
        ratios=[ray / best for ray, best in zip(times_ray, ideal, strict=True)],
        raw={
            "trials": len(planned),
            "workers": workers,
            "epochs": epochs,
            "sweep_wall_s": times_ray,
            "serial_s": times_serial,
            "until_first_trial_s": startup,
            "after_first_trial_ratio": [  # the same ratio without the fixed start (Ray, its workers, torch)
                (ray - start) / best for ray, start, best in zip(times_ray, startup, ideal, strict=True)
            ],
            "floor_s": floors,  # Ray, Tune and torch alone: no sweep here could train in that wall
            "floor_ratio": [1 + floor / best for floor, best in zip(floors, ideal, strict=True)],
            "above_floor": [  # what the sweep costs beyond the floor, repeat by repeat
                (ray - floor) / best - 1 for ray, floor, best in zip(times_ray, floors, ideal, strict=True)
            ],
        },
    )
