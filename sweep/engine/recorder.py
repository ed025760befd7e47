"""From a trial's reports to table rows, and into the results store.

`TrialRecorder` is the one place that turns epoch reports into `epochs`, `layers` and `trials` rows. The
in-process `sweep train` feeds it from the trainer's callback; the Ray driver feeds it with what each worker
reported. Either way a trial's rows are the same, and they reach the tables while the trial runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from sweep.core.facts import TrialFacts
from sweep.core.gradflow import MEASURES
from sweep.core.train import EpochReport
from sweep.plans.types import TrialMeta
from sweep.spec import TrialConfig, config_to_dict
from sweep.store import EPOCHS, ResultsStore
from sweep.store.sweep_state import PROJECT, package_versions

SUMMARY_POINTS = 11
EPOCH_COLUMNS = [name for name in EPOCHS.names if name != "trial_key"]


def summary_epochs(last_epoch: int) -> list[int]:
    """The epochs the `*_mean` columns average: 11 spread evenly over 0..last, both ends included."""
    if last_epoch < SUMMARY_POINTS:
        return list(range(last_epoch + 1))
    return sorted({round(e) for e in np.linspace(0, last_epoch, SUMMARY_POINTS)})


def trial_row(recorder: TrialRecorder, status: str, error: str | None, ended_at: datetime) -> dict:
    """The `trials` row of the recorder's trial as its epochs so far make it: config as typed columns,
    sizes, final and summary metrics, status, provenance.

    A trial's result is its last level (IMP trains several; every other method one): the summary measures
    and the best validation accuracy come from that level's epochs."""
    config, meta, facts, started_at = recorder.config, recorder.meta, recorder.facts, recorder.started_at
    model, train, data, sparsity = config.model, config.train, config.dataset, config.sparsity
    by_epoch = {int(e["epoch"]): e for e in recorder.epochs}
    last = by_epoch[max(by_epoch)] if by_epoch else {}
    final = sorted(e for e, row in by_epoch.items() if (row.get("level") or 0) == (last.get("level") or 0))
    spread = [final[0] + e for e in summary_epochs(final[-1] - final[0])] if final else []
    points = [by_epoch[e] for e in spread if e in by_epoch]
    val_accs = [by_epoch[e]["val_acc"] for e in final if by_epoch[e].get("val_acc") is not None]
    return {
        "trial_key": config.key,
        "kind": meta.kind,
        "status": status,
        "error": error,
        "role": meta.role,
        "pair_id": meta.pair_id,
        "capacity_mismatch": meta.capacity_mismatch,
        "dataset": data.name,
        "subset": data.subset,
        "test_subset": data.test_subset,
        "val_fraction": data.val_fraction,
        "family": model.family,
        "model_name": model.name or model.factory,
        "model_kwargs": json.dumps(model.kwargs, sort_keys=True) if model.kwargs else None,
        "depth": len(model.widths) if model.built_in else None,
        "widths": list(model.widths) if model.built_in else None,
        "densities": facts.densities if facts else None,
        "mask": model.mask,
        "method": sparsity.method,
        "scope": sparsity.effective_scope,
        "method_settings": json.dumps(
            {**config_to_dict(sparsity), **{k.split(".")[1]: v for k, v in sparsity.effective().items()}},
            sort_keys=True,
        ),
        "backend": model.backend,
        "layer_backends": [layer["backend"] for layer in facts.layers] if facts else None,
        "activation": model.activation,
        "batchnorm": model.batchnorm,
        "dropout": model.dropout,
        "skip": model.skip,
        "init": model.init,
        "init_widths": list(model.init_widths) if model.init_widths else None,
        "optimizer": train.optimizer,
        "lr": train.lr,
        "momentum": train.momentum,
        "nesterov": train.nesterov,
        "weight_decay": train.weight_decay,
        "schedule": train.schedule,
        "batch_size": train.batch_size,
        "augment": train.augment,
        "epochs": train.epochs,
        "epochs_done": max(by_epoch) if by_epoch else 0,
        "seed": train.seed,
        "egf_samples": config.egf.samples,
        "egf_mode": config.egf.mode,
        "active_weights": facts.active_weights if facts else None,
        "total_weights": facts.total_weights if facts else None,
        "total_params": facts.total_params if facts else None,
        "density": facts.active_weights / facts.total_weights if facts else None,
        "test_acc": last.get("test_acc"),
        "test_loss": last.get("test_loss"),
        "val_acc": last.get("val_acc"),
        "best_val_acc": max(val_accs) if val_accs else None,
        **{m: last.get(m) for m in MEASURES},
        **{f"{m}_mean": _mean([p.get(m) for p in points]) for m in ("egf1", "egf2", "gf1", "gf2")},
        "pareto": None,
        "feasible": None,
        "generation": meta.generation,
        "superseded": False,
        "wall_s": (ended_at - started_at).total_seconds(),
        "device": facts.device if facts else None,
        "node": facts.node if facts else None,
        "node_id": None,
        "attempts": 1,
        "started_at": started_at,
        "ended_at": ended_at,
        **versions(),
        "config": json.dumps(config_to_dict(config), sort_keys=True),
    }


class TrialRecorder:
    """Collects one trial's reports and keeps its rows in the store up to date."""

    def __init__(self, store: ResultsStore, sweep: str, config: TrialConfig, meta: TrialMeta) -> None:
        self.store, self.sweep, self.config, self.meta = store, sweep, config, meta
        self.key = config.key
        self.facts: TrialFacts | None = None
        self.epochs: list[dict] = []
        self.layers: list[dict] = []
        self.started_at = datetime.now(UTC)

    def add_epoch(
        self,
        metrics: Mapping,
        layers: Sequence[Mapping],
        facts: TrialFacts,
        started_at: datetime | None = None,
        history: Sequence[Mapping] = (),
    ) -> None:
        """Record one epoch and rewrite the trial's `epochs` and `layers` files with it.

        `started_at` is when the trial began where it runs (a Ray worker), if that is not here and now.
        `history` holds the reports of the epochs before this one, as a trial restored from a checkpoint
        sends them (its metrics with its `layers`): they replace whatever this recorder had, so the rows
        come out whole even when the driver that saw them first is gone.
        """
        self.facts = facts
        if started_at is not None:
            self.started_at = started_at
        for past in history:
            self._put({k: v for k, v in past.items() if k != "layers"}, past["layers"], facts)
        self._put(metrics, layers, facts)
        self.store.write("epochs", self.sweep, self.key, self.epochs)
        self.store.write("layers", self.sweep, self.key, self.layers)

    def _put(self, metrics: Mapping, layers: Sequence[Mapping], facts: TrialFacts) -> None:
        """This epoch's rows; rows of this epoch and later ones (from an attempt that was cut short) go."""
        epoch = int(metrics["epoch"])
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch] + [
            {"trial_key": self.key, **{name: metrics.get(name) for name in EPOCH_COLUMNS}}
        ]
        self.layers = [row for row in self.layers if row["epoch"] < epoch] + [
            {"trial_key": self.key, "epoch": epoch, **static, **flow}
            for static, flow in zip(facts.layers, layers, strict=True)
        ]

    def on_epoch(self, report: EpochReport, facts: TrialFacts) -> None:
        """The trainer's callback."""
        self.add_epoch(report.metrics, report.layers, facts)

    def row(self, status: str, error: str | None = None, ended_at: datetime | None = None) -> dict:
        """The trial's `trials` row as its epochs so far make it."""
        return trial_row(self, status, error, ended_at or datetime.now(UTC))

    def finish(
        self, status: str, error: str | None = None, *, ended_at: datetime | None = None, **extra: object
    ) -> dict:
        """Write the trial's `trials` row (with any extra columns, such as pareto) and return it."""
        row = self.row(status, error, ended_at)
        row.update(extra)
        self.store.write("trials", self.sweep, self.key, [row])
        if self.meta.continues and status == "done":  # its rows now hold the shorter trial's, and more
            self.store.forget_trial(self.sweep, self.meta.continues)
        return row


def facts_from_dict(data: Mapping) -> TrialFacts:
    return TrialFacts(**{f.name: data[f.name] for f in dataclasses.fields(TrialFacts)})


def _mean(values: list[float | None]) -> float | None:
    usable = [v for v in values if v is not None]
    return sum(usable) / len(usable) if usable else None


def versions() -> dict[str, str | None]:
    """The `trials` row's version columns."""
    found = package_versions()
    return {"torch_version": found["torch"], "ray_version": found["ray"], "sweep_version": found[PROJECT]}
