"""The floor of a sweep's fixed cost on this machine: an embedded Ray started as `sweep run` starts it, one
Tune trial per worker that imports torch and takes one optimizer step (which imports `torch._dynamo`), and
Ray stopped, with nothing of this package on the workers. No sweep can train in that wall (`sweep bench`,
sweep_overhead)."""

from __future__ import annotations

import tempfile
import time

import ray
from ray import tune

from sweep.engine.session import quiet_tune, start_embedded_ray


def engine_floor(workers: int) -> float:
    """Seconds from Ray's start to the last worker's first optimizer step, plus Ray's stop."""

    def first_step(config: dict) -> None:  # a trial's least; defined here, so Ray ships it by value
        import torch

        torch.set_num_threads(1)
        layer = torch.nn.Linear(8, 8)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
        layer(torch.ones(2, 8)).sum().backward()
        optimizer.step()
        tune.report({"stepped_at": time.time()})

    began = time.time()
    start_embedded_ray()
    try:
        with tempfile.TemporaryDirectory() as storage, quiet_tune():
            tuner = tune.Tuner(
                first_step,
                param_space={"worker": tune.grid_search(list(range(workers)))},
                tune_config=tune.TuneConfig(max_concurrent_trials=workers),
                run_config=tune.RunConfig(storage_path=storage, verbose=0),
            )
            stepped = max(result.metrics["stepped_at"] for result in tuner.fit())
    finally:
        stopping = time.time()
        ray.shutdown()
    return stepped - began + time.time() - stopping
