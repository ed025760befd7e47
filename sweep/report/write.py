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
Every figure's numbers are also written as a table in the report and as a CSV file beside it. A sweep gets
the sections of its kind (the report names the ones it leaves out), and a table of its failed trials first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sweep.errors import ResultsError, UserError
from sweep.report.cells import cell_columns, hashable_cells
from sweep.report.curves import curves_section
from sweep.report.dynamics import dynamics_section
from sweep.report.failures import failures_section
from sweep.report.gradient_flow import gradient_flow_section
from sweep.report.markdown import Section, header, markdown
from sweep.report.methods import methods_section
from sweep.report.sc_sdc import sc_sdc_section
from sweep.report.snas import snas_section
from sweep.store import ResultsStore
from sweep.store.summary import sweep_metric

# The sections each kind of sweep gets, in order, and the ones it leaves out.
SECTIONS = {
    "sc_sdc": ("sc_sdc", "dynamics", "methods", "gradient_flow", "curves"),
    "grid": ("sc_sdc", "methods", "gradient_flow", "curves"),
    "snas": ("gradient_flow", "snas", "methods", "curves"),
    "single": ("gradient_flow", "curves"),
}
SECTION_NAMES = {
    "sc_sdc": "SC-SDC (kind sc_sdc, or kind grid with dense references)",
    "dynamics": "training dynamics per cell (kind sc_sdc)",
    "snas": "SNAS (kind snas)",
    "methods": "mask methods (a sweep with several)",
}


def write_report(store: ResultsStore, name: str, out: Path) -> Path:
    """Write the figures, the CSV tables and `report.md` for one sweep; return the report's path."""
    if store.exists():
        store.check_readable(name)  # one line naming a damaged file, whichever table it is in
    trials = store.read("trials", name).to_pandas() if store.exists() else pd.DataFrame()
    if trials.empty:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"sweep {name!r} has no trials in {store.root} (sweeps there: {known})")
    epochs = store.read("epochs", name).to_pandas()
    state = store.sweep_state(name)
    spec = state.spec if state else {}
    kind = str(trials["kind"].iloc[0])
    metric = sweep_metric(spec, kind)
    cells = cell_columns(spec, trials)
    trials = hashable_cells(trials, cells)
    builders: dict[str, Callable[[], Section | None]] = {
        "sc_sdc": lambda: sc_sdc_section(trials, cells, out),
        "dynamics": lambda: dynamics_section(trials, epochs, cells, out),
        "gradient_flow": lambda: gradient_flow_section(trials, out),
        "snas": lambda: snas_section(trials, metric, out),
        "methods": lambda: methods_section(trials, out),
        "curves": lambda: curves_section(trials, epochs, metric, out),
    }
    chosen = SECTIONS.get(kind, tuple(builders))
    left_out = [SECTION_NAMES[key] for key in builders if key not in chosen and key in SECTION_NAMES]
    try:
        _check_writable(out)
        failures = failures_section(trials)
        drawn = [builders[key]() for key in chosen]  # the methods section draws only several methods
        sections = [*([failures] if failures else []), *(section for section in drawn if section is not None)]
        path = out / "report.md"
        path.write_text(markdown(header(name, kind, trials, store.root), sections, out, left_out))
    except OSError as exc:
        raise ResultsError(
            f"cannot write the report to {out}: {exc.strerror or exc}; give --out a folder you can write"
        ) from None
    return path


def _check_writable(out: Path) -> None:
    """Fail before drawing anything when the report's folder cannot take files."""
    out.mkdir(parents=True, exist_ok=True)
    probe = out / f".write-check-{uuid.uuid4().hex}"
    probe.write_bytes(b"ok")
    probe.unlink()
