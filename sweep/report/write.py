"""`sweep report`: figures and a `report.md` from a sweep's tables (never from the trainer).

Each section draws what the tables hold and says plainly what is missing:
- SC-SDC: accuracy against active weights for sparse and dense nets (band over seeds), and per grid cell the
  share of pairs where sparse beats its dense partner with one-sided paired tests (Wilcoxon, sign test);
- training dynamics (SC-SDC): mean test accuracy and EGF per epoch for each grid cell and role, and the
  trials that collapsed (ended well below their best epoch) or diverged;
- gradient flow: EGF and the baselines against accuracy, with Kendall's tau against test accuracy and loss,
  separately for sparse and dense nets (the paper's comparison);
- mask methods (a sweep with more than one): accuracy and EGF by method and density, paired tests;
- SNAS: the Pareto front of accuracy against active weights, the best trials' per-layer densities, and
  accuracy over the search;
- training curves: test accuracy and EGF per epoch for the top trials.
Every figure's numbers are also written as a table in the report and as a CSV file beside it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweep.errors import UserError
from sweep.report.cells import cell_columns, hashable_cells
from sweep.report.curves import curves_section
from sweep.report.dynamics import dynamics_section
from sweep.report.gradient_flow import gradient_flow_section
from sweep.report.markdown import markdown
from sweep.report.methods import methods_section
from sweep.report.sc_sdc import sc_sdc_section
from sweep.report.snas import snas_section
from sweep.store import ResultsStore
from sweep.store.summary import sweep_metric


def write_report(store: ResultsStore, name: str, out: Path) -> Path:
    """Write the figures, the CSV tables and `report.md` for one sweep; return the report's path."""
    if store.exists():
        store.check_readable(name)  # one line naming a damaged file, whichever table it is in
    trials = store.read("trials", name).to_pandas() if store.exists() else pd.DataFrame()
    if trials.empty:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"sweep {name!r} has no trials in {store.root} (sweeps there: {known})")
    epochs = store.read("epochs", name).to_pandas()
    state = store.sweep_state(name) or {}
    spec = state.get("spec", {})
    kind = str(trials["kind"].iloc[0])
    metric = sweep_metric(spec, kind)
    out.mkdir(parents=True, exist_ok=True)
    cells = cell_columns(spec, trials)
    trials = hashable_cells(trials, cells)
    sections = [
        sc_sdc_section(trials, cells, out),
        dynamics_section(trials, epochs, cells, out),
        gradient_flow_section(trials, out),
        snas_section(trials, metric, out),
        methods_section(trials, out),
        curves_section(trials, epochs, metric, out),
    ]
    sections = [section for section in sections if section is not None]
    path = out / "report.md"
    path.write_text(markdown(name, kind, trials, store.root, sections, out))
    return path
