"""The reproduction's shipped tables: complete sweeps, and the reports in the repository come from them.

FINDINGS.md quotes numbers from `results/reproduction/NAME/`; these tests regenerate each report from the
compacted tables under `results/reproduction/tables` and compare every table it writes with the one shipped.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT

REPRODUCTION = ROOT / "results" / "reproduction"
TABLES = REPRODUCTION / "tables"
SHIPPED = sorted(p.stem for p in (TABLES / "_sweeps").glob("*.json"))
WRITTEN_AT = re.compile(r"written \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def test_the_tables_hold_the_sweeps_findings_cites():
    findings = (REPRODUCTION / "FINDINGS.md").read_text()
    cited = sorted(set(re.findall(r"\(`(paper-[a-z_-]+)`, \[report\]", findings)))
    assert "paper-bn" in cited
    assert cited == SHIPPED, "every sweep FINDINGS.md reports on ships its tables, and only those"


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_sweep_is_complete(cli, monkeypatch, name):
    monkeypatch.chdir(ROOT)
    state = json.loads((TABLES / "_sweeps" / f"{name}.json").read_text())
    assert state["stage"] == "done"
    sql = (
        "SELECT t.trial_key, t.status, t.epochs_done, count(e.epoch) AS epoch_rows, "
        "max(e.epoch) AS last_epoch FROM trials t "
        "LEFT JOIN epochs e ON e.sweep = t.sweep AND e.trial_key = t.trial_key "
        f"WHERE t.sweep = '{name}' GROUP BY ALL"
    )
    result = cli("query", sql, "--results", "results/reproduction/tables", "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert rows, f"{name} has no trials"
    assert len({r["trial_key"] for r in rows}) == len(rows), "a trial appears twice"
    assert {r["status"] for r in rows} <= {"done", "stopped"}
    # one epochs row at initialisation (epoch 0), then one per epoch trained
    assert all(r["epoch_rows"] == r["last_epoch"] + 1 == r["epochs_done"] + 1 > 1 for r in rows), "lost rows"
    findings = (REPRODUCTION / "FINDINGS.md").read_text()
    runs = re.search(rf"^\| `{name}` \([^|]*tables here\) \| (\d+)", findings, re.M)
    assert runs, f"FINDINGS.md's Runs table has no row for {name}'s shipped tables"
    assert int(runs.group(1)) == len(rows)


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_report_comes_from_the_tables(cli, monkeypatch, tmp_path, name):
    monkeypatch.chdir(ROOT)
    shipped = REPRODUCTION / name.removeprefix("paper-")
    result = cli("report", name, "--results", "results/reproduction/tables", "--out", tmp_path)
    assert result.code == 0, result.err
    tables = sorted(p.name for p in shipped.glob("*.csv"))
    assert tables == sorted(p.name for p in tmp_path.glob("*.csv"))
    for table in tables:
        assert (tmp_path / table).read_text() == (shipped / table).read_text(), f"{name}: {table} differs"
    page = WRITTEN_AT.sub("written", (tmp_path / "report.md").read_text())
    assert page == WRITTEN_AT.sub("written", (shipped / "report.md").read_text())
