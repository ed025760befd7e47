"""Figure helpers shared by the report's sections: readable log axes, y-limits that show where the trials are,
saving and closing figures."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter

FENCE = 3.0  # values beyond this many interquartile ranges from the middle half are drawn at the edge
MIN_TICKS = 3


class ReadableLogLocator(Locator):
    """Ticks at 1, 2 and 5 times powers of ten; over a narrower range at every integer multiple, and over a
    range too narrow even for that at evenly spaced plain values, so that a log axis always carries at least
    `MIN_TICKS` labels."""

    def __call__(self) -> list[float]:
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((vmin, vmax))
        if low <= 0:
            return list(LogLocator().tick_values(low, high))
        for subs in ((1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10))):
            ticks = LogLocator(subs=subs).tick_values(low, high)
            if sum(low <= t <= high for t in ticks) >= MIN_TICKS:
                return list(ticks)
        return [t for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if t > 0]


def log_axis(ax: plt.Axes, which: str = "x") -> None:
    """A log axis with plain tick labels, readable over wide and narrow ranges alike."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(ReadableLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}"))
    axis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis=which, labelsize=8, **({"labelrotation": 30} if which == "x" else {}))


def robust_limits(values: Iterable[float]) -> tuple[float, float] | None:
    """Y-limits around the bulk of the values (within `FENCE` interquartile ranges of the middle half), or
    None when every value lies inside them and the default limits already show them all."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(data) < 4:
        return None
    q1, q3 = np.quantile(data, [0.25, 0.75])
    spread = max(q3 - q1, 1e-3 * max(abs(q1), abs(q3), 1e-12))
    inside = data[(data >= q1 - FENCE * spread) & (data <= q3 + FENCE * spread)]
    if len(inside) == len(data):
        return None
    low, high = inside.min(), inside.max()
    pad = 0.08 * max(high - low, spread)
    return low - pad, high + pad


def mark_outside(ax: plt.Axes, xs: Iterable[float], ys: Iterable[float], limits: tuple[float, float]) -> None:
    """Set the y-limits and draw each point beyond them as an arrow head at the edge, with a count."""
    low, high = limits
    ax.set_ylim(low, high)
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and np.isfinite(y)]
    below = [(x, y) for x, y in points if y < low]
    above = [(x, y) for x, y in points if y > high]
    for group, edge, marker, where in ((below, low, "v", 0.02), (above, high, "^", 0.98)):
        if not group:
            continue
        ax.scatter(
            [x for x, _ in group],
            [edge] * len(group),
            marker=marker,
            s=30,
            color="tab:red",
            clip_on=False,
            zorder=5,
        )
        worst = min(y for _, y in group) if marker == "v" else max(y for _, y in group)
        side = "below" if marker == "v" else "above"
        ax.text(
            0.99,
            where,
            f"{len(group)} {side} the axis (to {worst:.3g})",
            transform=ax.transAxes,
            ha="right",
            va="bottom" if marker == "v" else "top",
            fontsize=7,
            color="tab:red",
        )


def save_figure(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
