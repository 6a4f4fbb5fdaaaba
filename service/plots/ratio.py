"""The headline plot: the metric against r = s_a / s_b of the spec's two `ratio` axes on a log axis labelled in
ratios (1/16 ... 16), over the COMPLETE trials (repeats at their configuration's ratio), with a binned trend
(bins equal in log2 r), each repeated configuration's mean and interval, the searched range [low_a / high_b,
high_a / low_b], the smoothed optimum (`search/surface.py`), the spec's `prediction` and the priors (`search/priors.py`:
each complete prior at its configuration's mean, an open marker and a legend entry per rule). The star is the study's
answer (`afpe.search.repeats.study_answer`: the best mean over repeats, at its mean); the single best run is a
marker of its own. Every band and marker has a legend entry. At most `MAX_POINTS` trial markers (`shown_points`:
the best quarter exactly); the trend is computed over every trial."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials, log2_ratio, ratio_range
from afpe.search.prior_results import prior_results
from afpe.search.repeats import Estimate, study_answer
from afpe.search.spec import SearchSpace
from afpe.search.surface import smoothed_optimum
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.plain_text import plain_text
from afpe.service.plots.shared import (
    BEST_MARKER,
    NO_TRIAL,
    empty_figure,
    padded_range,
    positions_note,
    ratio_label,
    ratio_ticks,
    shown_note,
    shown_points,
)


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
    """A configuration (search trial `number` and its repeats) at ratio `x`: the mean of its `n` runs and their
    95 % interval (low = high = mean for a single run)."""

    x: float
    mean: float
    low: float
    high: float
    n: int
    number: int = -1


@dataclass(frozen=True)
class PriorPoint:
    """A complete prior at ratio `x`: its rules' `label`, search trial `number`, and its configuration's mean with
    its 95 % interval (low = high = mean without one) over `n` runs."""

    label: str
    x: float
    mean: float
    low: float
    high: float
    n: int
    number: int


PRIOR_MARKERS = ("square-open", "diamond-open", "hexagon-open", "cross-open", "pentagon-open")
PRIOR_COLORS = ("darkgreen", "mediumblue", "darkviolet", "saddlebrown", "teal")


@dataclass(frozen=True)
class RatioData:
    """Metric vs s_a / s_b over COMPLETE trials (repeats included, at their configuration's ratio): `answer` the
    study's answer (best mean over repeats), `best_run` the single best COMPLETE run, each repeated
    configuration's mean and interval, the searched range, the smoothed optimum's ratio and 95 % interval
    (`search/surface.py`) and the spec's prediction. Every x is a ratio, not its log."""

    ratio: tuple[str, str]
    metric: str
    x: list[float]
    y: list[float]
    numbers: list[int]
    searched: tuple[float, float]
    trend: Trend
    repeats: list[RepeatSpread] = field(default_factory=list)
    answer: RepeatSpread | None = None
    best_run: RepeatSpread | None = None  # n = 1: one trial's value
    optimum: tuple[float, float, float] | None = None  # smoothed optimum: ratio, 95 % interval low, high
    prediction: tuple[float, str] | None = None  # the spec's `prediction`: ratio, label
    total: int = 0  # COMPLETE trials with a ratio (the trend's); x, y and numbers hold `shown_points` of them
    positions: str | None = None  # physical positions: how a scale reads, its unit named (`SearchSpace`)
    priors: list[PriorPoint] = field(default_factory=list)  # the complete priors (`search/priors.py`)


def _spread(e: Estimate) -> RepeatSpread:
    low, high = e.ci if e.ci is not None else (e.mean, e.mean)
    return RepeatSpread(e.ratio, e.mean, low, high, e.n, e.number)


def ratio_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> RatioData:
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no ratio to plot")
    points = [(log2_ratio(t.params, space.ratio), t) for t in complete_trials(trials)]
    points = [(x, t) for x, t in points if x is not None]
    logs = [p[0] for p in points]
    y = [p[1].value for p in points]
    numbers = [p[1].number for p in points]
    answer = study_answer(trials, space.direction, space.ratio)
    searched = ratio_range(space)
    n_bins = int(np.clip(round(math.sqrt(len(logs))), 3, 20))
    low, high = min([math.log2(searched[0]), *logs]), max([math.log2(searched[1]), *logs])
    trend = binned_trend(logs, y, np.linspace(low, high, n_bins + 1)) if logs else Trend([], [], [], [])
    trend = Trend([2.0**c for c in trend.centers], trend.means, trend.stds, trend.counts)
    best_run = None
    if y:
        pick = max if space.direction == "maximize" else min
        i = pick(range(len(y)), key=y.__getitem__)
        best_run = RepeatSpread(2.0 ** logs[i], y[i], y[i], y[i], 1, numbers[i])
    shown = shown_points(y, space.direction, [numbers.index(best_run.number)] if best_run else [])
    estimates = answer.estimates if answer else []
    spread = [_spread(e) for e in estimates if e.ci is not None and e.ratio is not None]
    best = _spread(answer.best) if answer is not None and answer.best.ratio is not None else None
    smoothed = smoothed_optimum(trials, space)
    optimum = None
    if smoothed is not None and smoothed.ratio is not None:  # without an interval (`ci_note`), a line alone
        optimum = (smoothed.ratio, *(smoothed.ci or (smoothed.ratio, smoothed.ratio)))
    priors = []
    for prior in prior_results(trials, space, answer):
        if prior.estimate is not None and prior.ratio is not None:
            at = _spread(prior.estimate)  # a repeated prior's interval is numpy's (scipy): plain floats here
            low, mean, high = float(at.low), float(at.mean), float(at.high)
            priors.append(PriorPoint(prior.label, prior.ratio, mean, low, high, at.n, prior.number))
    return RatioData(
        ratio=space.ratio,
        metric=space.metric,
        x=[2.0 ** logs[i] for i in shown],
        y=[y[i] for i in shown],
        numbers=[numbers[i] for i in shown],
        searched=searched,
        trend=trend,
        repeats=spread,
        answer=best,
        best_run=best_run,
        optimum=optimum,
        prediction=space.prediction,
        total=len(points),
        positions=space.positions_note,
        priors=priors,
    )


def _vertical(fig: go.Figure, x0: float, x1: float, name: str, **style: object) -> None:
    """A band (x0 < x1, below the data) or a line (x0 == x1, above it) over the plot's height at data x, with its
    legend entry."""
    shape = {"type": "rect", "line_width": 0, "layer": "below"} if x1 > x0 else {"type": "line", "layer": "above"}
    fig.add_shape(**shape, **style, x0=x0, x1=x1, y0=0, y1=1, xref="x", yref="paper", showlegend=True, name=name)


def _interval(low: float, high: float) -> str:
    return f"[{low:.3g}, {high:.3g}]"


@register_plot("ratio", ratio_data)
def ratio_figure(d: RatioData) -> go.Figure:
    a, b = d.ratio
    title = f"{d.metric} vs scale ratio s_{a}/s_{b}{shown_note(len(d.x), d.total)}{positions_note(d.positions)}"
    if not d.total:
        return empty_figure(title, NO_TRIAL)
    fig = go.Figure()
    low, high = d.searched
    _vertical(
        fig, low, high, f"searched range {ratio_label(low)} to {ratio_label(high)}", fillcolor="rgba(144,238,144,0.3)"
    )
    ends = [low, high, *d.x, *(p.x for p in d.priors)]
    if d.optimum is not None:
        x, o_low, o_high = d.optimum
        ends += [o_low, o_high]
        if o_high > o_low:
            _vertical(
                fig,
                o_low,
                o_high,
                f"smoothed optimum: 95% CI {_interval(o_low, o_high)}",
                fillcolor="rgba(218,112,214,0.25)",
            )
            name = f"smoothed optimum {x:.3g}"
        else:
            name = f"smoothed optimum {x:.3g} (interval not estimable)"
        _vertical(fig, x, x, name, line={"color": "purple", "dash": "dash", "width": 2})
    if d.prediction is not None:
        ratio, label = d.prediction
        ends.append(ratio)
        _vertical(
            fig,
            ratio,
            ratio,
            f"{plain_text(label)} (ratio {ratio:.3g})",
            line={"color": "seagreen", "dash": "dot", "width": 3},
        )
    t = d.trend
    upper = [m + s for m, s in zip(t.means, t.stds, strict=True)]
    lower = [m - s for m, s in zip(t.means, t.stds, strict=True)]
    fig.add_trace(
        go.Scatter(
            x=t.centers, y=upper, mode="lines", line_width=0, legendgroup="trend", showlegend=False, hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t.centers,
            y=lower,
            mode="lines",
            line_width=0,
            fill="tonexty",
            fillcolor="rgba(70,130,180,0.2)",
            name="binned mean ± 1 sd",
            legendgroup="trend",
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
            hovertemplate="ratio %{x:.3g}<br>mean %{y:.4g}<br>n=%{customdata}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=d.x,
            y=d.y,
            mode="markers",
            name="trials (runs)",
            marker={"color": "gray", "size": 6, "opacity": 0.6},
            customdata=d.numbers,
            hovertemplate="trial %{customdata}<br>ratio %{x:.3g}<br>%{y:.4g}<extra></extra>",
        )
    )
    if d.repeats:
        fig.add_trace(_means(d.repeats, "repeated configuration: mean, 95% CI", "diamond", 9, "darkorange"))
    for index, prior in enumerate(d.priors):
        fig.add_trace(_prior_trace(prior, d.metric, index))
    if d.answer is not None:
        e = d.answer
        what = f"best mean of {e.n} runs, 95% CI {_interval(e.low, e.high)}" if e.n > 1 else "best run (no repeats)"
        fig.add_trace(_means([e], f"answer: {what}", "star", BEST_MARKER["size"], BEST_MARKER["color"]))
        fig.data[-1].marker.line = BEST_MARKER["line"]
    if d.best_run is not None and (d.answer is None or d.answer.n > 1 or d.answer.number != d.best_run.number):
        run = d.best_run
        fig.add_trace(
            go.Scatter(
                x=[run.x],
                y=[run.mean],
                mode="markers",
                name=f"best single run (trial {run.number})",
                marker={
                    "symbol": "triangle-up",
                    "size": 12,
                    "color": "white",
                    "line": {"width": 2, "color": "crimson"},
                },
                hovertemplate="best single run<br>ratio %{x:.3g}<br>%{y:.4g}<extra></extra>",
            )
        )
    x_range = padded_range(ends, log=True)
    ticks, labels = ratio_ticks(10 ** x_range[0], 10 ** x_range[1])
    fig.update_xaxes(
        type="log",
        range=x_range,
        tickvals=ticks,
        ticktext=labels,
        title=f"scale ratio s_{a} / s_{b} (log axis)",
    )
    values = [*d.y, *upper, *lower, *(r.low for r in d.repeats), *(r.high for r in d.repeats)]
    values += [v for p in d.priors for v in (p.low, p.high)]
    fig.update_yaxes(range=padded_range(values + ([d.answer.low, d.answer.high] if d.answer else [])), title=d.metric)
    fig.update_layout(title=title, legend={"orientation": "h", "yanchor": "top", "y": -0.18})
    return fig


def _prior_trace(prior: PriorPoint, metric: str, index: int) -> go.Scatter:
    """A prior at its mean (its 95 % interval as error bars when repeated): an open marker of its own, named by
    its rules and value in the legend."""
    color = PRIOR_COLORS[index % len(PRIOR_COLORS)]
    runs = f", mean of {prior.n}" if prior.n > 1 else ""
    return go.Scatter(
        x=[prior.x],
        y=[prior.mean],
        mode="markers",
        name=f"prior {plain_text(prior.label)}: {plain_text(metric)} {prior.mean:.3g}{runs} (trial {prior.number})",
        marker={"symbol": PRIOR_MARKERS[index % len(PRIOR_MARKERS)], "size": 13, "color": color, "line_width": 2},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [prior.high - prior.mean],
            "arrayminus": [prior.mean - prior.low],
            "visible": bool(prior.high > prior.low),
        },
        hovertemplate=f"prior {plain_text(prior.label)}<br>ratio %{{x:.3g}}<br>%{{y:.4g}}<extra></extra>",
    )


def _means(spreads: list[RepeatSpread], name: str, symbol: str, size: int, color: str) -> go.Scatter:
    """Configurations at their mean with their 95 % interval as error bars."""
    return go.Scatter(
        x=[r.x for r in spreads],
        y=[r.mean for r in spreads],
        mode="markers",
        name=name,
        marker={"symbol": symbol, "size": size, "color": color},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [r.high - r.mean for r in spreads],
            "arrayminus": [r.mean - r.low for r in spreads],
            "visible": any(r.n > 1 for r in spreads),
        },
        customdata=[[r.number, r.n] for r in spreads],
        hovertemplate="trial %{customdata[0]}: mean of %{customdata[1]} runs<br>ratio %{x:.3g}<br>%{y:.4g}"
        "<extra></extra>",
    )
