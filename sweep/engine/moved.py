"""Old import paths of the classes Tune pickles into a sweep's saved state (its searcher, in the tuner and in
every experiment checkpoint): a sweep interrupted before a module moved resumes after it, since unpickling
its state imports the old path and gets the module at the new one."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "sweep.engine.checkpoints": "sweep.engine.experiment",
    "sweep.engine.waiting": "sweep.engine.progress",
    "sweep.engine.replay": "sweep.engine.search.replay",
    "sweep.engine.study_searcher": "sweep.engine.search.study_searcher",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module at its new one (the same module object, not a copy)."""

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module at the new path ran already."""


def keep_old_paths() -> None:
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
