"""Learning curves: every trial's intermediate values per epoch, one trace per state. Past MAX_CURVES curves,
quantile bands over every curve plus the BEST_CURVES best trials' curves; past MAX_CURVE_POINTS points each
curve is thinned (the figure's size grows with the epochs, not the trials)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials
from afpe.search.repeats import best_configuration
from afpe.search.spec import SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import STATE_COLORS, empty_figure

MAX_CURVES = 100  # learning curves drawn one by one; past it: quantile bands and the best curves
BEST_CURVES = 20  # the best trials' curves drawn over the bands
BAND_QUANTILES = (0.1, 0.5, 0.9)
MAX_CURVE_POINTS = 20_000  # points of the learning curves drawn; more curves x epochs are thinned per curve


@dataclass(frozen=True)
class Curve:
    number: int
    state: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class Bands:
    """Per step, the BAND_QUANTILES of the intermediate values of every trial that reported that step."""

    steps: list[int]
    quantiles: list[list[float]]  # one list per quantile, aligned with steps
    counts: list[int]


@dataclass(frozen=True)
class IntermediateData:
    """Learning curves of the `total` trials that reported any: every curve when there are at most MAX_CURVES;
    else the curves of the BEST_CURVES best COMPLETE trials (the study's best among them) over `bands`
    computed from every curve."""

    metric: str
    curves: list[Curve] = field(default_factory=list)
    bands: Bands | None = None
    total: int = 0


def intermediate_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> IntermediateData:
    reported = sorted((t for t in trials if t.intermediate_values), key=lambda t: t.number)
    shown = reported
    bands = None
    if len(reported) > MAX_CURVES:
        ranked = sorted(complete_trials(reported), key=lambda t: t.value, reverse=space.direction == "maximize")
        best = best_configuration(trials, space.direction)
        numbers = {t.number for t in ranked[:BEST_CURVES]} | ({best.number} if best else set())
        shown = [t for t in reported if t.number in numbers]
        bands = _bands(reported)
    curves = []
    for trial in shown:
        steps = sorted(trial.intermediate_values)
        curves.append(Curve(trial.number, trial.state.name, steps, [trial.intermediate_values[s] for s in steps]))
    return IntermediateData(space.metric, curves, bands, len(reported))


def _bands(trials: Sequence[FrozenTrial]) -> Bands:
    """BAND_QUANTILES per step over the finite intermediate values of `trials`."""
    steps = np.fromiter((s for t in trials for s in t.intermediate_values), dtype=float)
    values = np.fromiter((v for t in trials for v in t.intermediate_values.values()), dtype=float)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    order = np.lexsort((values, steps))
    steps, values = steps[order], values[order]
    unique, starts, counts = np.unique(steps, return_index=True, return_counts=True)
    quantiles = [
        [float(np.quantile(values[a : a + c], q)) for a, c in zip(starts, counts, strict=True)] for q in BAND_QUANTILES
    ]
    return Bands([int(s) for s in unique], quantiles, counts.tolist())


@register_plot("intermediate", intermediate_data)
def intermediate_figure(d: IntermediateData) -> go.Figure:
    """The quantile bands of every curve (when the data has them), then one trace per trial state of the curves
    shown (joined with gaps), so the figure's size grows with the epochs, not the trials; past MAX_CURVE_POINTS
    each curve keeps every k-th epoch and its last."""
    if not d.curves:
        return empty_figure("Learning curves", "no trial has reported an epoch yet")
    total = sum(len(curve.steps) for curve in d.curves)
    stride = max(1, math.ceil(total / MAX_CURVE_POINTS))
    fig = go.Figure()
    if d.bands is not None:
        low, median, high = d.bands.quantiles
        labels = [f"{q:.0%}" for q in BAND_QUANTILES]
        fig.add_trace(
            go.Scatter(x=d.bands.steps, y=high, mode="lines", line_width=0, showlegend=False, hoverinfo="skip")
        )
        fig.add_trace(
            go.Scatter(
                x=d.bands.steps,
                y=low,
                mode="lines",
                line_width=0,
                fill="tonexty",
                fillcolor="rgba(70,130,180,0.2)",
                name=f"{labels[0]}-{labels[2]} of all {d.total} trials",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=d.bands.steps,
                y=median,
                mode="lines",
                name="median",
                line={"color": "steelblue", "dash": "dot"},
                customdata=d.bands.counts,
                hovertemplate="epoch %{x}<br>median %{y:.4g}<br>n=%{customdata}<extra></extra>",
            )
        )
    for state in dict.fromkeys(curve.state for curve in d.curves):
        x: list[int | None] = []
        y: list[float | None] = []
        numbers: list[int | None] = []
        for curve in (c for c in d.curves if c.state == state):
            keep = sorted(set(range(0, len(curve.steps), stride)) | {len(curve.steps) - 1})
            x += [curve.steps[i] for i in keep] + [None]
            y += [curve.values[i] for i in keep] + [None]
            numbers += [curve.number] * len(keep) + [None]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                customdata=numbers,
                mode="lines+markers",
                name=state,
                line_color=STATE_COLORS.get(state, "gray"),
                hovertemplate=f"trial %{{customdata}} ({state})<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
            )
        )
    thinned = f"; one epoch in {stride} shown" if stride > 1 else ""
    best = f"the {len(d.curves)} best of {d.total} trials over bands of all; " if d.bands is not None else ""
    fig.update_layout(
        title=f"Learning curves ({best}pruned trials in orange{thinned})", xaxis_title="epoch", yaxis_title=d.metric
    )
    return fig
