"""`sweep bench --quick`: every comparison yields a finite ratio and the JSON has the documented keys.

Speed itself is not asserted: these machines are too noisy for that. The figures go in the README."""

from __future__ import annotations

import json
import math

import pytest

from sweep.bench.harness import FULL_SIZE_GOALS, GOALS

from .conftest import needs_fashion

pytestmark = [pytest.mark.slow, needs_fashion]
KEYS = (
    "masking_ratio",
    "data_speedup",
    "egf_overhead",
    "checkpoint_overhead",
    "rigl_overhead",
    "snip_cost",
    "grasp_cost",
    "synflow_cost",
    "ranking_speedup",
    "subnormal_cost",
    "sweep_overhead",
    "tracking_overhead",
    "peak_fraction",
    "sparse_speedup",
    "resnet_masking",
    "model_bytes",
)


def test_quick_bench_reports_every_ratio(cli, tmp_path):
    out = tmp_path / "bench.json"
    result = cli("bench", "--quick", "--out", out)
    assert result.code == 0, result.err
    record = json.loads(out.read_text())
    for key in KEYS:
        stats = record[key]
        assert set(stats) == {"min", "median", "max"}
        assert all(math.isfinite(v) and v > 0 for v in stats.values()), key
        assert stats["min"] <= stats["median"] <= stats["max"]
        assert key in result.out
        assert record["raw"][key], key
    assert {"cpu", "threads", "device"} <= set(record["machine"])
    assert "quick: small sizes and 3 repeats" in result.out  # what quick mode can and cannot show
    for key in KEYS:
        (line,) = [line for line in result.out.splitlines() if line.strip().startswith(f"{key} ")]
        if GOALS[key] is None:
            assert line.endswith("no goal: a cost to know"), line
        elif key in FULL_SIZE_GOALS:
            assert line.endswith("quick: sizes too small to judge this goal"), line
        else:
            assert line.endswith(("met", "MISSED")), line
    swept = record["raw"]["sweep_overhead"]
    assert swept["trials"] >= 2
    (floor,), (serial,), (floor_ratio,) = swept["floor_s"], swept["serial_s"], swept["floor_ratio"]
    assert floor > 0 and floor_ratio == pytest.approx(1 + floor / (serial / swept["workers"]))
    assert record["raw"]["tracking_overhead"]["snapshots_sent"][0] >= 2  # every trial's runs reached MLflow
    subnormal = record["raw"]["subnormal_cost"]  # the kept side really computed with subnormal weights
    share = subnormal["subnormal_weights"] / subnormal["active_weights"]
    assert 0.02 < share < 0.1
    held = record["raw"]["model_bytes"]  # the masks cost something, and are counted
    assert held["masked bytes"] > held["plain bytes"] > 40_000_000  # ResNet-18: 11.2 M float32 weights


def test_bench_rejects_an_unknown_comparison(cli):
    result = cli("bench", "--only", "nonsense")
    assert result.code == 2 and "--only nonsense: unknown" in result.err
