"""Reports and status from the tables of real small sweeps: the numbers equal an independent computation."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import torch
from scipy import stats

from .conftest import tiny_grid, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]

GRID = """
name: grid
kind: sc_sdc
dataset: {name: synthetic, subset: 600}
train: {lr: 0.05, epochs: 3, batch_size: 64}
egf: {samples: 128}
grid:
  sparse_width: 40
  ratios: [0.25, 0.5]
  depths: [1]
  seeds: [0, 1]
  axes: {train.optimizer+train.lr: [[sgd, 0.05], [adam, 0.01]]}  # a linked axis: cells are (optimizer, lr)
"""
SNAS = """
name: search
kind: snas
dataset: {name: synthetic, subset: 600}
model: {widths: [32, 16]}
train: {optimizer: momentum, lr: 0.05, epochs: 2, batch_size: 64}
egf: {samples: 128}
search: {num_samples: 5, sampler: random, density_levels: [0.1, 0.3, 0.6, 1.0], seed: 0, baselines: true,
         baseline_seeds: [0, 1], max_active_weights: 4000}
"""


FAILING = tiny_grid(
    "failing", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0], axes: {train.device: [cpu, cuda]}}"
)


@pytest.fixture(scope="module")
def results(tmp_path_factory, shared_ray):
    from sweep.cli import main

    root = tmp_path_factory.mktemp("report")
    for name, text in (("grid", GRID), ("search", SNAS)):
        assert main(["run", str(write_spec(root / f"{name}.yaml", text)), "--results", str(root / "r")]) == 0
    return root / "r"


def md_table(report: str, name: str) -> pd.DataFrame:
    """Read back one table of report.md."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"Table `{name}`"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return pd.DataFrame(body, columns=header)


def test_sc_sdc_report_numbers_match_duckdb(results, cli, tmp_path):
    out = tmp_path / "grid-report"
    result = cli("report", "grid", "--results", results, "--out", out)
    assert result.code == 0, result.err
    report = (out / "report.md").read_text()
    for figure in ("sc_sdc_accuracy.png", "gradient_flow.png", "curves.png"):
        assert (out / figure).stat().st_size > 10_000
        assert f"]({figure})" in report
    assert "## SNAS" not in report and "snas.png" not in report  # a section of another kind of sweep
    assert "Left out, as they belong to other kinds of sweep: SNAS (kind snas)." in report
    assert "## Failed trials" not in report
    assert set(md_table(report, "curves")["role"]) <= {"sparse", "dense"}

    pairs = duckdb.sql(f"""
        SELECT s.optimizer, s.test_acc AS sparse, d.test_acc AS dense
        FROM read_parquet('{results}/trials/sweep=grid/*.parquet') s
        JOIN read_parquet('{results}/trials/sweep=grid/*.parquet') d USING (pair_id)
        WHERE s.role = 'sparse' AND d.role = 'dense' ORDER BY pair_id""").df()
    table = md_table(report, "sc_sdc_tests").set_index("optimizer")
    for cell, group in [*pairs.groupby("optimizer"), ("all", pairs)]:
        diff = group["sparse"] - group["dense"]
        row = table.loc[cell]
        assert int(row["pairs"]) == len(group) == (4 if cell != "all" else 8)
        assert float(row["sparse_wins"]) == pytest.approx((diff > 0).mean(), abs=1e-3)
        expected = stats.wilcoxon(diff, alternative="greater").pvalue if (diff != 0).any() else 1.0
        assert float(row["p_wilcoxon"]) == pytest.approx(expected, rel=1e-3)
        assert float(row["sparse_acc"]) == pytest.approx(group["sparse"].mean(), rel=1e-3)

    by_width = md_table(report, "sc_sdc_by_width")
    widths = duckdb.sql(f"""
        SELECT s.optimizer, d.widths[1] AS dense_width, count(*) AS pairs,
               avg((s.test_acc > d.test_acc)::int) AS wins
        FROM read_parquet('{results}/trials/sweep=grid/*.parquet') s
        JOIN read_parquet('{results}/trials/sweep=grid/*.parquet') d USING (pair_id)
        WHERE s.role = 'sparse' AND d.role = 'dense' GROUP BY ALL""").fetchall()
    assert len(by_width) == len(widths) > len(table) - 1
    rows = by_width.set_index(["optimizer", by_width["dense_width"].astype(int)])
    for optimizer, width, n, wins in widths:
        assert int(rows.loc[(optimizer, width), "pairs"]) == n
        assert float(rows.loc[(optimizer, width), "sparse_wins"]) == pytest.approx(wins, abs=1e-3)


def test_dynamics_table_matches_duckdb(results, cli, tmp_path):
    out = tmp_path / "grid-report"
    assert cli("report", "grid", "--results", results, "--out", out).code == 0
    report = (out / "report.md").read_text()
    assert "](dynamics.png)" in report and (out / "dynamics.png").exists()
    # "collapsed" is an absolute drop in accuracy, as the code computes it (and the README says)
    assert "more than 0.05 (5 percentage points) below the best it reached at any epoch" in report
    table = md_table(report, "dynamics").set_index(["optimizer", "role"])
    expected = duckdb.sql(f"""
        SELECT optimizer, role, count(*) AS n, avg(test_acc) AS acc, avg(egf2_mean) AS egf
        FROM read_parquet('{results}/trials/sweep=grid/*.parquet') GROUP BY ALL""").fetchall()
    assert len(expected) == len(table) == 4
    for optimizer, role, n, acc, egf in expected:
        row = table.loc[(optimizer, role)]
        assert int(row["trials"]) == n
        assert float(row["final_test_acc"]) == pytest.approx(acc, rel=1e-3)
        assert float(row["egf_mean"]) == pytest.approx(egf, rel=1e-3)


def test_gradient_flow_taus_match_scipy(results, cli, tmp_path):
    out = tmp_path / "grid-report"
    assert cli("report", "grid", "--results", results, "--out", out).code == 0
    table = md_table((out / "report.md").read_text(), "gradient_flow")
    trials = pd.read_parquet(results / "trials")
    trials = trials[(trials["sweep"] == "grid") & (trials["status"] == "done")]
    sparse = trials["density"] < 1
    for group, frame in (("sparse", trials[sparse]), ("dense", trials[~sparse])):
        for measure in ("gf1", "gf2", "egf1", "egf2"):
            row = table[(table["group"] == group) & (table["measure"] == measure)].iloc[0]
            tau, p = stats.kendalltau(frame[f"{measure}_mean"], frame["test_acc"])
            assert float(row["tau_acc"]) == pytest.approx(tau, abs=1e-3)
            assert float(row["p_acc"]) == pytest.approx(p, rel=1e-3, abs=1e-4)
            assert int(row["n"]) == len(frame)


def test_snas_report_draws_the_search(results, cli, tmp_path):
    out = tmp_path / "search-report"
    result = cli("report", "search", "--results", results, "--out", out)
    assert result.code == 0, result.err
    report = (out / "report.md").read_text()
    assert (out / "snas.png").exists() and "](snas.png)" in report
    assert "## SC-SDC" not in report and "## Training dynamics" not in report
    assert (
        "Left out, as they belong to other kinds of sweep: SC-SDC (kind sc_sdc, or kind grid with dense "
        "references); training dynamics per cell (kind sc_sdc)." in report
    )
    best = md_table(report, "snas_best")
    top, best_key, over = duckdb.sql(f"""
        SELECT max(val_acc), arg_max(trial_key, val_acc), (SELECT count(*) FILTER (WHERE NOT feasible)
            FROM read_parquet('{results}/trials/sweep=search/*.parquet')
            WHERE role IN ('search', 'warm_start'))
        FROM read_parquet('{results}/trials/sweep=search/*.parquet')
        WHERE role IN ('search', 'warm_start') AND status = 'done' AND feasible""").fetchall()[0]
    assert float(best["val_acc"].iloc[0]) == pytest.approx(top, abs=1e-4)  # the best within the budget
    assert (best["active_weights"].astype(int) <= 4000).all()
    assert over > 0 and f"{over} over the active-weight budget (drawn, not ranked)" in report
    baselines = md_table(report, "snas_baselines").set_index("role")
    roles = {"baseline_uniform", "baseline_erk", "baseline_dense", "baseline_full_dense"}
    assert set(baselines.index) == roles | {"best"}
    assert (baselines["seeds"].astype(int) == 2).all()  # baseline_seeds: [0, 1]
    runs = duckdb.sql(f"""
        SELECT CASE WHEN role = 'best_reseeded' THEN 'best' ELSE role END AS role, count(*), avg(test_acc)
        FROM read_parquet('{results}/trials/sweep=search/*.parquet')
        WHERE role LIKE 'baseline_%' OR role = 'best_reseeded' GROUP BY ALL""").fetchall()
    reseeded_of = duckdb.sql(f"""SELECT pair_id FROM read_parquet('{results}/trials/sweep=search/*.parquet')
                                 WHERE role = 'best_reseeded'""").fetchall()[0][0]
    assert reseeded_of == best_key
    best_acc = duckdb.sql(f"""SELECT test_acc FROM read_parquet('{results}/trials/sweep=search/*.parquet')
                              WHERE trial_key = '{best_key}'""").fetchall()[0][0]
    for role, count, acc in runs:
        if role == "best":  # the best search trial (seed 0) and its re-run at seed 1
            assert count == 1
            acc = (acc + best_acc) / 2
        else:
            assert count == 2, role
        assert float(baselines.loc[role, "test_acc"]) == pytest.approx(acc, abs=5e-4), role
    front = md_table(report, "snas_front")
    flagged = duckdb.sql(f"""SELECT count(*) FROM read_parquet('{results}/trials/sweep=search/*.parquet')
                             WHERE pareto""").fetchall()[0][0]
    assert len(front) == flagged > 0


def test_report_on_a_missing_sweep(results, cli, tmp_path):
    result = cli("report", "nope", "--results", results, "--out", tmp_path / "x")
    assert result.code == 2
    assert "sweep 'nope' has no trials" in result.err and "grid, search" in result.err
    empty = cli("report", "nope", "--results", tmp_path / "nothing")
    assert empty.code == 2 and "has no trials" in empty.err


def test_status_counts_match_the_tables(results, cli):
    listing = cli("status", "--results", results)
    assert listing.code == 0, listing.err
    counts = duckdb.sql(f"""SELECT sweep, count(*) FROM read_parquet('{results}/trials/*/*.parquet',
                            hive_partitioning = true) GROUP BY sweep ORDER BY sweep""").fetchall()
    for sweep, n in counts:
        line = next(line for line in listing.out.splitlines() if line.split()[0] == sweep)
        assert f" {n} " in line and "complete" in line
    assert cli("list", "--results", results).out == listing.out
    detail = cli("status", "grid", "--results", results)
    assert detail.code == 0 and "best trials (by test_acc)" in detail.out
    missing = cli("status", "nope", "--results", results)
    assert missing.code == 2 and "no sweep named 'nope'" in missing.err


def test_failed_trials_are_listed_with_their_error(cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so no trial fails")
    run = cli("run", write_spec(tmp_path / "s.yaml", FAILING), "--results", tmp_path / "r")
    assert run.code == 0, run.err  # the CPU pair is done, the CUDA pair failed
    result = cli("report", "failing", "--results", tmp_path / "r", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    report = (tmp_path / "out" / "report.md").read_text()
    failed = md_table(report, "failed_trials")
    errors = duckdb.sql(f"""SELECT trial_key, error FROM read_parquet('{tmp_path}/r/trials/*/*.parquet')
                            WHERE status = 'error'""").fetchall()
    assert len(failed) == len(errors) == 2
    by_key = failed.set_index("trial_key")
    for key, error in errors:
        assert by_key.loc[key, "status"] == "error"
        first = error.strip().splitlines()[0].replace("|", "\\|")
        assert by_key.loc[key, "error"] == (first if len(first) <= 200 else first[:199] + "…")
        assert "no CUDA device" in by_key.loc[key, "error"]
    assert (tmp_path / "out" / "failed_trials.csv").exists()
    assert report.index("## Failed trials") < report.index("## SC-SDC")
