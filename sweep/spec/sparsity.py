"""The mask method's section of a spec (SPEC.md §9): which method, and its settings, each naming the methods
it applies to. `scope` and `regrown` default to the method's own choice, as its paper has it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sweep.spec.choices import (
    GLOBAL_BY_DEFAULT,
    MAX_COUNT,
    METHODS,
    PRUNING_AT_INIT,
    REGROWN,
    SCOPES,
    opt,
)


@dataclass(frozen=True)
class SparsitySpec:
    """The mask method and its settings (SPEC.md §9); each setting names the methods it applies to."""

    method: str = field(default="random", metadata=opt(choices=METHODS))
    scope: str | None = field(default=None, metadata=opt(choices=SCOPES))  # null: the method's default
    score_batch: int = field(default=128, metadata=opt(gt=0, le=MAX_COUNT))  # snip: training samples scored
    grasp_per_class: int = field(default=10, metadata=opt(gt=0, le=MAX_COUNT))  # grasp: samples per class
    grasp_temperature: float = field(default=200.0, metadata=opt(gt=0.0))  # grasp: logits divided by it
    synflow_rounds: int = field(
        default=100, metadata=opt(gt=0, le=MAX_COUNT)
    )  # synflow: rounds from dense to the target
    shuffle_of: str = field(default="snip", metadata=opt(choices=PRUNING_AT_INIT))  # shuffle: whose counts
    update_every: int = field(
        default=100, metadata=opt(gt=0, le=MAX_COUNT)
    )  # set, rigl, gmp: steps between updates
    drop_fraction: float = field(default=0.3, metadata=opt(gt=0.0, lt=1.0))  # set, rigl: alpha
    update_end: float = field(default=0.75, metadata=opt(gt=0.0, le=1.0))  # set, rigl, gmp: last update
    prune_start: float = field(default=0.1, metadata=opt(ge=0.0, lt=1.0))  # gmp: first pruning step
    prune_fraction: float = field(default=0.2, metadata=opt(gt=0.0, lt=1.0))  # imp: pruned per level
    levels: int | None = field(
        default=None, metadata=opt(gt=0, le=MAX_COUNT)
    )  # imp: null = as prune_fraction needs
    regrown: str | None = field(default=None, metadata=opt(choices=REGROWN))  # null: the method's default
    rewind_epoch: int = field(
        default=0, metadata=opt(ge=0, le=MAX_COUNT)
    )  # imp: the epoch the weights rewind to

    @property
    def effective_scope(self) -> str:
        """`scope`, or the method's default: global for snip, grasp and synflow, layer for the others."""
        return self.scope or ("global" if self.method in GLOBAL_BY_DEFAULT else "layer")

    @property
    def effective_regrown(self) -> str:
        """`regrown`, or the method's default: keep for rigl, reset for set (and for the methods it does not
        apply to)."""
        return self.regrown or ("keep" if self.method == "rigl" else "reset")

    def effective(self) -> dict[str, str]:
        """The settings a trial runs with where the spec leaves them to the method, as dotted keys."""
        return {"sparsity.scope": self.effective_scope, "sparsity.regrown": self.effective_regrown}
