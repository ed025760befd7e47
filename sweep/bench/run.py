"""`sweep bench`: the trainer and the sweep layer against what a user would otherwise write.

Every comparison runs its two sides in this one process, alternating A and B several times after a warm-up,
and reports the ratio of each pair as min / median / max, plus the absolute times for the record:
- masking_ratio  = masked trainer epoch / plain dense PyTorch loop epoch (same model shape, data, optimizer);
- data_speedup   = torchvision DataLoader epoch (ToTensor + Normalize per sample) / trainer epoch;
- egf_overhead   = epoch with the EGF probe / epoch without it (both evaluate the test set);
- checkpoint_overhead = epoch with the checkpoint a worker hands Tune after it / epoch without one;
- rigl_overhead  = RigL epoch (mask updates every 100 steps) / static-mask epoch on the reference MLP;
- snip_cost, grasp_cost, synflow_cost = choosing the masks by that method / one training epoch;
- ranking_speedup = a ResNet-18's best 10% of weights kept by a full sort / by one global threshold, the
                   selection every global mask method ends in (`sweep.core.masks.selection.keep_top`);
- subnormal_cost = forward and backward passes of the reference MLP with 5% of its weights subnormal,
                   computed as they are / flushed to zero as the trainer does (`sweep.core.numerics`);
- sweep_overhead = `sweep run` wall on an embedded Ray / (the same trials' serial time / parallel workers);
                   beside it, its floor: Ray, Tune and torch started and stopped with nothing of ours;
- tracking_overhead = that sweep's wall with its runs sent to MLflow live / without (`sweep.bench.tracking`);
- peak_fraction  = the trainer's FLOP/s on the reference MLP (784-300-100-10, batch 128, all weights counted)
                   / this machine's dense matmul FLOP/s at the same dtype;
- sparse_speedup = masked-backend epoch / `backend: auto` epoch for the SC-SDC MLP of ratio 0.1 (width 3076,
                   4 hidden layers, hidden-to-hidden layers 1% dense);
- resnet_masking, model_bytes = a torchvision ResNet-18 masked in place against the plain one: epoch time,
                   and bytes held (`sweep.bench.models`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sweep.bench.checkpoint import checkpoint_cost
from sweep.bench.harness import Result, Settings, machine, quick_header, summary_line
from sweep.bench.masks import ranking_cost, rigl_cost, scoring_cost
from sweep.bench.models import model_bytes, resnet_masking
from sweep.bench.sparse import calibrate, sparse_speed
from sweep.bench.subnormal import subnormal_cost
from sweep.bench.sweep import sweep_cost
from sweep.bench.tracking import tracking_cost
from sweep.bench.trainer import data_path, egf_cost, masking, peak
from sweep.core.data import load_arrays, make_splits
from sweep.core.layers import calibration_path
from sweep.core.numerics import flush_subnormals
from sweep.spec import DatasetSpec


def run_bench(
    device: str = "cpu",
    quick: bool = False,
    echo: Callable[[str], None] = print,
    only: list[str] | None = None,
) -> dict:
    """Run every comparison (or those in `only`) and return the JSON-ready record."""
    settings = Settings(torch.device(device), quick)
    flush_subnormals()  # every comparison runs its trainer side as a trial does
    if settings.device.type == "cuda" and not torch.cuda.is_available():
        from sweep.errors import UserError

        raise UserError("--device cuda: no CUDA device is visible here")
    arrays = load_arrays(DatasetSpec(name="fashion_mnist"))
    splits = make_splits(arrays, DatasetSpec(subset=settings.train_samples), seed=0, device=settings.device)
    benches: dict[str, Callable[[], Result]] = {
        "masking_ratio": lambda: masking(splits, settings),
        "data_speedup": lambda: data_path(arrays, splits, settings),
        "egf_overhead": lambda: egf_cost(splits, settings),
        "checkpoint_overhead": lambda: checkpoint_cost(splits, settings),
        "rigl_overhead": lambda: rigl_cost(splits, settings),
        "snip_cost": lambda: scoring_cost("snip", splits, settings),
        "grasp_cost": lambda: scoring_cost("grasp", splits, settings),
        "synflow_cost": lambda: scoring_cost("synflow", splits, settings),
        "ranking_speedup": lambda: ranking_cost(settings),
        "peak_fraction": lambda: peak(splits, settings),
        "sparse_speedup": lambda: sparse_speed(splits, settings),
        "subnormal_cost": lambda: subnormal_cost(splits, settings),
        "sweep_overhead": lambda: sweep_cost(settings),
        "tracking_overhead": lambda: tracking_cost(settings),
        "resnet_masking": lambda: resnet_masking(settings),
        "model_bytes": lambda: model_bytes(settings),
    }
    record: dict = {"machine": machine(settings.device), "quick": quick, "raw": {}}
    if quick:
        echo(quick_header())
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
        echo(summary_line(name, record[name], quick))
    return record
