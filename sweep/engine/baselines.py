"""A search's baselines, trained at its best trial's active-weight count, and superseded when a grown
search finds another best trial: the earlier baselines' rows stay, marked `superseded`."""

from __future__ import annotations

from collections.abc import Mapping

from sweep.core.data import ArrayDataset
from sweep.echo import Echo
from sweep.engine.worker import dataset_key
from sweep.plans.baselines import baseline_trials
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.summary import best_row, is_feasible

BASELINE_ROLES = (
    "baseline_uniform",
    "baseline_erk",
    "baseline_dense",
    "baseline_full_dense",
    "best_reseeded",
)


def planned_baselines(
    spec: SweepSpec, store: ResultsStore, data: Mapping[str, ArrayDataset], echo: Echo
) -> list[PlannedTrial]:
    """The baselines of the best finished search trial; earlier baselines of another best are superseded."""
    arrays = data[dataset_key(spec.dataset)]
    rows = store.rows("trials", spec.name)
    searched = [r for r in rows if r["role"] in ("search", "warm_start")]
    usable = [r for r in searched if r["status"] == "done" and r.get(spec.search.metric) is not None]
    usable = [r for r in usable if is_feasible(r)]
    if not usable:
        echo("no finished search trial: no baselines to train")
        return []
    best = best_row(usable, spec.search.metric)
    echo(f"training the baselines at the best trial's {best['active_weights']:,} active weights")
    planned = baseline_trials(best, arrays.input_shape, arrays.num_classes, spec.search.baseline_seeds)
    superseded = _supersede(store, spec.name, rows, best["trial_key"], {p.config.key for p in planned})
    if superseded:
        echo(superseded)
    return planned


def _supersede(store: ResultsStore, sweep: str, rows: list[dict], best: str, needed: set[str]) -> str | None:
    """Baselines sized on another trial are superseded, unless the new best needs the same net again; the
    line that says so (None: none was)."""
    earlier = [r for r in rows if r["role"] in BASELINE_ROLES and r["pair_id"] != best]
    superseded = 0
    for row in earlier:
        again = row["trial_key"] in needed
        if not again and row.get("superseded"):
            continue
        store.write("trials", sweep, row["trial_key"], [{**row, **_fresh(again, best, row)}])
        superseded += not again
    if superseded:
        olds = sorted({r["pair_id"] for r in earlier if r["trial_key"] not in needed})
        changed = f"the best trial changed ({', '.join(olds)} -> {best})"
        return f"{changed}: {superseded} earlier baselines superseded"
    return None


def _fresh(again: bool, best: str, row: dict) -> dict:
    if again:  # the new best needs this net too: it is one of its baselines now
        return {"pair_id": best, "superseded": False}
    return {"pair_id": row["pair_id"], "superseded": True}
