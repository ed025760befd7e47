"""A sweep's persisted state, `<results>/_sweeps/<name>.json`: its resolved spec, the stage it reached, and
its growths. One type, one reader and one writer, for every state written so far (older ones lack
`generation`, `history` and `sampler`, and read as a first run with no history)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from importlib import metadata
from typing import Any

PROJECT = "sparse-sweep"


@dataclass
class GrowthEntry:
    """One run that made or grew the sweep: when it started and ended, the command, the spec changes that
    grew it, its trial counts, the versions it ran with and, for growth to more epochs, the lengths."""

    generation: int
    started_at: str
    command: str
    changes: list[str]
    trials_before: int
    versions: dict[str, str | None]
    ended_at: str | None = None
    trials_added: int | None = None
    trials_trained: int | None = None
    epochs: list[int] | None = None  # growth to more epochs: the old length, then the new

    def to_json(self) -> dict[str, Any]:
        entry = asdict(self)
        if self.epochs is None:
            del entry["epochs"]
        return entry


def package_versions() -> dict[str, str | None]:
    """The installed versions of the project, torch, Ray and Optuna (None: not installed): what a growth's
    history entry and a trial's row record, since a trial's key does not see code changes."""
    return dict(_installed((PROJECT, "torch", "ray", "optuna")))


@cache
def _installed(names: tuple[str, ...]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@dataclass
class SweepState:
    """Where a sweep stands: `stage` is `main`, `baselines` or `done`; `generation` 0 for the first run and
    one more for each growth; `sampler` the settings a search first ran with (None: not a search, or a
    state from before growths)."""

    name: str
    spec: dict[str, Any]
    stage: str = "main"
    generation: int = 0
    history: list[GrowthEntry] = field(default_factory=list)
    sampler: dict[str, int] | None = None

    @property
    def kind(self) -> str | None:
        return self.spec.get("kind")

    @property
    def done(self) -> bool:
        return self.stage == "done"

    @classmethod
    def from_json(cls, text: str) -> SweepState:
        data = json.loads(text)
        known = {f.name for f in fields(GrowthEntry)}
        history = [
            GrowthEntry(**{k: v for k, v in e.items() if k in known}) for e in data.get("history") or []
        ]
        return cls(
            name=data["name"],
            spec=data.get("spec") or {},
            stage=data.get("stage") or "main",
            generation=int(data.get("generation") or 0),
            history=history,
            sampler=data.get("sampler"),
        )

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "name": self.name,
            "spec": self.spec,
            "stage": self.stage,
            "generation": self.generation,
            "history": [entry.to_json() for entry in self.history],
        }
        if self.sampler is not None:
            data["sampler"] = self.sampler
        return json.dumps(data, indent=1)
