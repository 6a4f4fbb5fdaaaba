"""The headline plot: the metric against log2 r, r = s_a / s_b of the spec's two `ratio` axes, over the COMPLETE
trials (repeats at their configuration's ratio), with a binned trend, each repeated configuration's mean and
interval, the searched range [log2(low_a / high_b), log2(high_a / low_b)] and the smoothed optimum
(`search/surface.py`). The best is the study's answer (`afpe.search.repeats`). At most `MAX_POINTS` markers
(`shown_points`: the best quarter and the marked best exactly); the trend is computed over every trial."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials, log2_ratio, ratio_range
from afpe.search.repeats import study_answer
from afpe.search.spec import SearchSpace
from afpe.search.surface import smoothed_optimum
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import BEST_MARKER, positions_note, shown_note, shown_points


def searched_ratio_range(space: SearchSpace) -> tuple[float, float]:
    """The searched range of log2(s_a / s_b); ValueError when the space has no ratio."""
    low, high = ratio_range(space)
    return math.log2(low), math.log2(high)


@dataclass(frozen=True)
class Trend:
    """Per-bin mean and standard deviation of the metric (empty bins dropped)."""

    centers: list[float]
    means: list[float]
    stds: list[float]
    counts: list[int]


def binned_trend(x: Sequence[float], y: Sequence[float], edges: np.ndarray) -> Trend:
    """Mean ± std of y in each bin of x given by `edges` (values on the last edge fall in the last bin)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(index, minlength=len(edges) - 1)
    sums = np.bincount(index, weights=y, minlength=len(edges) - 1)
    squares = np.bincount(index, weights=y * y, minlength=len(edges) - 1)
    kept = counts > 0
    means = sums[kept] / counts[kept]
    stds = np.sqrt(np.maximum(squares[kept] / counts[kept] - means**2, 0.0))
    centers = ((edges[:-1] + edges[1:]) / 2)[kept]
    return Trend(centers.tolist(), means.tolist(), stds.tolist(), counts[kept].astype(int).tolist())


@dataclass(frozen=True)
class RepeatSpread:
    """A repeated configuration at log2 ratio `x`: the mean of its `n` runs and their 95 % interval."""

    x: float
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class RatioData:
    """Metric vs log2(s_a / s_b) over COMPLETE trials (repeats included, at their configuration's ratio), with
    the best marked, each repeated configuration's mean and interval, the searched range, and the smoothed
    optimum's ratio and 95 % interval (`search/surface.py`)."""

    ratio: tuple[str, str]
    metric: str
    x: list[float]
    y: list[float]
    numbers: list[int]
    best_index: int | None
    searched: tuple[float, float]
    trend: Trend
    repeats: list[RepeatSpread] = field(default_factory=list)
    optimum: tuple[float, float, float] | None = None  # smoothed optimum: log2 ratio, 95 % interval low, high
    total: int = 0  # COMPLETE trials with a ratio (the trend's); x, y and numbers hold `shown_points` of them
    positions: str | None = None  # physical positions: how a scale reads, its unit named (`SearchSpace`)


def ratio_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> RatioData:
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no ratio to plot")
    points = [(log2_ratio(t.params, space.ratio), t) for t in complete_trials(trials)]
    points = [(x, t) for x, t in points if x is not None]
    x = [p[0] for p in points]
    y = [p[1].value for p in points]
    numbers = [p[1].number for p in points]
    answer = study_answer(trials, space.direction, space.ratio)
    searched = searched_ratio_range(space)
    n_bins = int(np.clip(round(math.sqrt(len(x))), 3, 20))
    low, high = min([searched[0], *x]), max([searched[1], *x])
    trend = binned_trend(x, y, np.linspace(low, high, n_bins + 1)) if x else Trend([], [], [], [])
    best_index = numbers.index(answer.best.number) if answer and answer.best.number in numbers else None
    shown = shown_points(y, space.direction, [] if best_index is None else [best_index])
    if best_index is not None:
        best_index = shown.index(best_index)
    spread = [
        RepeatSpread(math.log2(e.ratio), e.mean, e.ci[0], e.ci[1], e.n)
        for e in (answer.estimates if answer else [])
        if e.ci is not None and e.ratio is not None
    ]
    smoothed = smoothed_optimum(trials, space)
    optimum = None
    if smoothed is not None and smoothed.ratio is not None and smoothed.ci is not None:
        optimum = (math.log2(smoothed.ratio), math.log2(smoothed.ci[0]), math.log2(smoothed.ci[1]))
    x, y, numbers = ([seq[i] for i in shown] for seq in (x, y, numbers))
    return RatioData(
        space.ratio,
        space.metric,
        x,
        y,
        numbers,
        best_index,
        searched,
        trend,
        spread,
        optimum,
        len(points),
        space.positions_note,
    )


@register_plot("ratio", ratio_data)
def ratio_figure(d: RatioData) -> go.Figure:
    a, b = d.ratio
    fig = go.Figure()
    fig.add_vrect(
        x0=d.searched[0],
        x1=d.searched[1],
        fillcolor="lightgreen",
        opacity=0.15,
        line_width=0,
        annotation_text="searched range",
        annotation_position="top left",
    )
    if d.optimum is not None:
        x, low, high = d.optimum
        fig.add_vrect(x0=low, x1=high, fillcolor="orchid", opacity=0.15, line_width=0)
        fig.add_vline(
            x=x,
            line={"color": "purple", "dash": "dash"},
            annotation_text=f"smoothed optimum {2**x:.3g} [{2**low:.3g}, {2**high:.3g}]",
            annotation_position="bottom right",
        )
    t = d.trend
    upper = [m + s for m, s in zip(t.means, t.stds, strict=True)]
    lower = [m - s for m, s in zip(t.means, t.stds, strict=True)]
    fig.add_trace(go.Scatter(x=t.centers, y=upper, mode="lines", line_width=0, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=t.centers,
            y=lower,
            mode="lines",
            line_width=0,
            fill="tonexty",
            fillcolor="rgba(70,130,180,0.2)",
            name="trend ± 1 sd",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t.centers,
            y=t.means,
            mode="lines+markers",
            name="binned mean",
            line_color="steelblue",
            customdata=t.counts,
            hovertemplate="log2 ratio %{x:.2f}<br>mean %{y:.4g}<br>n=%{customdata}",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=d.x,
            y=d.y,
            mode="markers",
            name="trials",
            marker={"color": "gray", "size": 6, "opacity": 0.6},
            customdata=d.numbers,
            hovertemplate="trial %{customdata}<br>log2 ratio %{x:.3f}<br>%{y:.4g}",
        )
    )
    if d.repeats:
        fig.add_trace(
            go.Scatter(
                x=[r.x for r in d.repeats],
                y=[r.mean for r in d.repeats],
                mode="markers",
                name="repeated: mean, 95% CI",
                marker={"symbol": "diamond", "size": 9, "color": "darkorange"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.high - r.mean for r in d.repeats],
                    "arrayminus": [r.mean - r.low for r in d.repeats],
                },
                customdata=[r.n for r in d.repeats],
                hovertemplate="log2 ratio %{x:.3f}<br>mean %{y:.4g}<br>n=%{customdata}",
            )
        )
    if d.best_index is not None:
        fig.add_trace(
            go.Scatter(
                x=[d.x[d.best_index]],
                y=[d.y[d.best_index]],
                mode="markers",
                name="best",
                marker=BEST_MARKER,
                customdata=[d.numbers[d.best_index]],
                hovertemplate="best: trial %{customdata}<br>%{y:.4g}",
            )
        )
    fig.update_layout(
        title=f"{d.metric} vs scale ratio s_{a}/s_{b}{shown_note(len(d.x), d.total)}{positions_note(d.positions)}",
        xaxis_title=f"log2(s_{a} / s_{b})",
        yaxis_title=d.metric,
    )
    return fig
