"""A search never trains one configuration twice: the driver-side searcher wrapper that replays repeats.

A sampler may propose a configuration it has already seen (TPE does, on small spaces), and a resumed search
proposes again what had finished before the interruption. `ReplayingSearcher` wraps the sweep's searcher on
the driver: a proposal whose trial already finished `done` goes to Tune marked as a replay (the worker
reports the recorded result and trains nothing), and a proposal whose twin is still training waits for it.
It lives in the driver process, so losing a worker node or an actor loses none of it, and after a resume it
rebuilds what finished from the tables. A search warm-started from other sweeps (`search.warm_start_from`)
replays their finished trials too: a configuration one of them trained is not trained again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher

from sweep.engine.worker import REPLAY
from sweep.plans.types import PLANNED
from sweep.spec import METRICS, parse_trial
from sweep.store import ResultsStore


class ReplayingSearcher(Searcher):
    """Wraps `searcher`: at most `total` proposals; a finished configuration is replayed, not retrained."""

    def __init__(
        self, searcher: Searcher, results: str, sweep: str, total: int, borrowed: Sequence[str] = ()
    ) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher  # the name Tune looks for when it saves wrapped searchers
        self.results, self.sweep, self.total = results, sweep, total
        self.borrowed = tuple(borrowed)  # the sweeps it was warm-started from
        self.proposed = 0  # proposals handed to Tune or waiting for their twin
        self.replayed = 0
        self.finished: dict[str, dict] = {}  # trial key -> the result a replay reports
        self.running: dict[str, str] = {}  # Tune trial id -> the trial key it trains
        self.waiting: list[tuple[str, str, dict]] = []  # (searcher's id, trial key, config) of twins
        self.inner_ids: dict[str, str] = {}  # Tune trial id -> the id the wrapped searcher knows it by
        self._synced = False

    # ------------------------------------------------------------------------- Tune's Searcher interface
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        self._sync()
        for index, (inner, key, config) in enumerate(self.waiting):
            twin_running = key in self.running.values()
            if key in self.finished or not twin_running:  # replay it, or train it if the twin did not finish
                del self.waiting[index]
                return self._hand_out(trial_id, inner, key, config)
        if self.proposed >= self.total:
            return Searcher.FINISHED if not self.waiting else None
        config = self.searcher.suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        self.proposed += 1
        key = parse_trial(config[PLANNED]["config"]).key
        if key not in self.finished and key in self.running.values():
            self.waiting.append((trial_id, key, config))
            return None
        return self._hand_out(trial_id, trial_id, key, config)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(self.inner_ids.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(self.inner_ids.pop(trial_id, trial_id), result=result, error=error)
        key = self.running.pop(trial_id, None)
        epochs = (result or {}).get("epochs_total")  # Tune hands searchers flattened results: no "facts"
        done = result and not error and not result.get("diverged") and result.get("epoch") == epochs
        if key is not None and done:
            self.finished[key] = replay_result(result, epochs)

    def get_state(self) -> dict:
        """What Tune saves with the experiment (the wrapped searcher saves itself)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("searcher", "_synced")}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)
        self._synced = False

    # ------------------------------------------------------------------------------------------ helpers
    def _hand_out(self, trial_id: str, inner: str, key: str, config: dict) -> dict:
        self.inner_ids[trial_id] = inner
        if key in self.finished:
            self.replayed += 1
            return {**config, REPLAY: self.finished[key]}
        self.running[trial_id] = key
        return config

    def _sync(self) -> None:
        """Once per driver process: the trials the tables hold as done (finished before a resume)."""
        if self._synced:
            return
        store = ResultsStore(self.results)
        rows = []
        for sweep in (self.sweep, *getattr(self, "borrowed", ())) if store.exists() else ():
            rows += store.rows("trials", sweep)
        for row in rows:
            if row["status"] == "done":
                self.finished.setdefault(row["trial_key"], replay_result(row, row["epochs_done"]))
        self._synced = True


def replay_result(values: Mapping[str, Any], epoch: int) -> dict:
    """What a finished trial reports again when its configuration comes up again (a `trials` row or the
    trial's last result): enough for the searcher, the scheduler and the progress line."""
    return {"epoch": epoch, **{name: values.get(name) for name in ("trial_key", "active_weights", *METRICS)}}
