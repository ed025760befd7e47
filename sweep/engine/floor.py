"""The floor of a sweep's fixed cost on this machine, for a sweep that starts its own embedded Ray as `sweep
run` does: Ray started, one Tune trial per worker that imports torch and takes one optimizer step (which
imports `torch._dynamo`), and Ray stopped, with nothing of this package on the workers. A sweep's workers
train nothing before that step (`sweep bench`, sweep_overhead)."""

from __future__ import annotations

import tempfile
import time

import ray
from ray import tune

from sweep.engine.session import quiet_tune, start_embedded_ray


def engine_floor(workers: int) -> float:
    """Seconds from Ray's start to the last worker's first optimizer step, plus Ray's stop."""

    def first_step(config: dict) -> None:  # a trial's least; defined here, so that Ray ships it by value
        import sys

        import torch

        torch.set_num_threads(1)
        layer = torch.nn.Linear(8, 8)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
        layer(torch.ones(2, 8)).sum().backward()
        optimizer.step()
        ours = [name for name in sys.modules if name.partition(".")[0] == "sweep"]
        tune.report({"stepped_at": time.time(), "ours": len(ours)})

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
            reports = [result.metrics for result in tuner.fit()]
    finally:
        stopping = time.time()
        ray.shutdown()
        stopped = time.time() - stopping
    if any(report["ours"] for report in reports):  # it would cost our imports too: not the floor
        raise RuntimeError("the floor's trial loaded this package on its workers")
    return max(report["stepped_at"] for report in reports) - began + stopped
