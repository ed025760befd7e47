"""The sweep's persisted state reads every `_sweeps/*.json` written so far, the shipped ones included, and
writes back what it read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweep.store import ResultsStore
from sweep.store.summary import history_lines
from sweep.store.sweep_state import GrowthEntry, SweepState

SHIPPED = sorted(Path(__file__).parents[1].glob("results/reproduction/tables/_sweeps/*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_state_reads_and_writes_back_unchanged(path: Path) -> None:
    original = json.loads(path.read_text())
    state = SweepState.from_json(path.read_text())
    assert state.name == original["name"] and state.spec == original["spec"]
    assert state.stage == original["stage"] and state.done
    assert state.generation == original.get("generation", 0)
    assert len(state.history) == len(original.get("history", []))
    written = json.loads(state.to_json())
    if "history" in original:  # a state since growths: every key and value as it was
        assert written == original
    else:  # from before growths: read as a first run with no history
        assert written == {**original, "generation": 0, "history": []}


def test_shipped_states_include_one_from_before_growths() -> None:
    assert any("history" not in json.loads(p.read_text()) for p in SHIPPED)
    assert any("sampler" in json.loads(p.read_text()) for p in SHIPPED)


def test_a_grown_state_round_trips_through_the_store(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r")
    first = GrowthEntry(0, "2026-01-01T00:00:00+00:00", "run", [], 0, {"torch": "2.14.1", "ray": None})
    first.ended_at, first.trials_added, first.trials_trained = "2026-01-01T00:01:00+00:00", 4, 4
    grown = GrowthEntry(
        1, "2026-01-02T00:00:00+00:00", "run", ["train.epochs: 2 -> 4"], 4, {"torch": "2.14.1"}
    )
    grown.epochs = [2, 4]
    state = SweepState("g", {"kind": "single"}, "main", 1, [first, grown], sampler={"n_startup_trials": 5})
    store.save_sweep_state(state)
    back = store.sweep_state("g")
    assert back == state and not back.done
    assert [s.name for s in store.sweep_states()] == ["g"]
    raw = json.loads((tmp_path / "r" / "_sweeps" / "g.json").read_text())
    assert "epochs" not in raw["history"][0] and raw["history"][1]["epochs"] == [2, 4]
    lines = history_lines(back)
    assert "the first run: 4 trials added, 4 trained (torch 2.14.1)" in lines[0]
    assert "train.epochs: 2 -> 4: running or interrupted" in lines[1]
