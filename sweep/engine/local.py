"""One trial in this process, without Ray (`sweep train`): the core trainer, rows streamed to the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sweep.core.data import ArrayDataset
from sweep.core.facts import TrialFacts
from sweep.core.train import EpochReport, train_trial
from sweep.engine.recorder import TrialRecorder
from sweep.errors import UserError
from sweep.plans.types import TrialMeta
from sweep.spec import TrialConfig
from sweep.store import ResultsStore


# The public API's signature (`sweep.record_trial`): it keeps its parameters.
def record_trial(  # noqa: PLR0913
    config: TrialConfig,
    sweep: str,
    meta: TrialMeta,
    store: ResultsStore,
    *,
    data: ArrayDataset | None = None,
    on_line: Callable[[str], None] | None = None,
) -> dict:
    """Train one trial in this process, streaming its rows to the store. Returns its `trials` row."""
    recorder = TrialRecorder(store, sweep, config, meta)

    def on_epoch(report: EpochReport, facts: TrialFacts) -> None:
        recorder.on_epoch(report, facts)
        if on_line is not None:
            on_line(epoch_line(report.metrics, config.train.epochs))

    try:
        outcome = train_trial(config, data=data, on_epoch=on_epoch)
    except UserError:
        raise
    except Exception as exc:
        recorder.finish("error", f"{type(exc).__name__}: {exc}")
        raise
    return recorder.finish(outcome.status, outcome.error)


def epoch_line(metrics: Mapping, epochs: int) -> str:
    """One readable line per epoch."""

    def show(name: str, fmt: str) -> str:
        value = metrics.get(name)
        return f"{name} {value:{fmt}}" if value is not None else f"{name} -"

    parts = [
        f"epoch {int(metrics['epoch']):>3}/{epochs}",
        show("train_loss", ".4f"),
        show("test_acc", ".4f"),
        show("val_acc", ".4f"),
        show("egf", ".4g"),
        show("gf2", ".4g"),
        f"{metrics['seconds']:.1f}s",
    ]
    return "  ".join(parts)
