"""The mean metric on a log10-spaced grid over the two ratio axes, with the trials as points (at most
`MAX_POINTS`, `shown_points`; the grid is computed over every trial). Plotly is given the cells' edges, not their
centres: on a log axis it would put the edges halfway between centres in linear units, which shifts every cell
off the trials it averages; the axes span exactly the searched ranges (no tick beyond them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials
from afpe.search.spec import AxisSpec, SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import NO_TRIAL, empty_figure, shown_note, shown_points


@dataclass(frozen=True)
class ContourData:
    """Mean metric on a log10-spaced grid over two scale axes (NaN where no trial fell), plus the points."""

    x_axis: AxisSpec
    y_axis: AxisSpec
    x_edges: list[float]  # bins + 1 cell edges per axis, log10-spaced over [low, high]
    y_edges: list[float]
    z: list[list[float | None]]
    points_x: list[float]
    points_y: list[float]
    points_value: list[float]
    metric: str
    total: int = 0  # trials in the grid; the points are `shown_points` of them


MIN_BINS, MAX_BINS = 4, 20


def contour_data(trials: Sequence[FrozenTrial], space: SearchSpace, bins: int | None = None) -> ContourData:
    """Cells per axis: `bins`, by default sqrt(trials) within [MIN_BINS, MAX_BINS] (about one trial a cell
    along each axis); a trial falls in the cell whose edges hold its scales (its last cell on the high edge)."""
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no contour to plot")
    x_axis, y_axis = (space.axis(name) for name in space.ratio)
    done = [t for t in complete_trials(trials) if x_axis.param in t.params and y_axis.param in t.params]
    px = np.array([t.params[x_axis.param] for t in done], dtype=float)
    py = np.array([t.params[y_axis.param] for t in done], dtype=float)
    pv = np.array([t.value for t in done], dtype=float)
    bins = bins or int(np.clip(math.ceil(math.sqrt(len(done))), MIN_BINS, MAX_BINS))
    x_edges = np.linspace(math.log10(x_axis.low), math.log10(x_axis.high), bins + 1)
    y_edges = np.linspace(math.log10(y_axis.low), math.log10(y_axis.high), bins + 1)
    sums, _, _ = np.histogram2d(np.log10(px), np.log10(py), bins=(x_edges, y_edges), weights=pv)
    counts, _, _ = np.histogram2d(np.log10(px), np.log10(py), bins=(x_edges, y_edges))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts).T  # rows follow y, columns follow x
    z = [[None if math.isnan(v) else float(v) for v in row] for row in means]
    shown = shown_points(pv, space.direction)
    return ContourData(
        x_axis,
        y_axis,
        (10**x_edges).tolist(),
        (10**y_edges).tolist(),
        z,
        px[shown].tolist(),
        py[shown].tolist(),
        pv[shown].tolist(),
        space.metric,
        len(done),
    )


@register_plot("contour", contour_data)
def contour_figure(d: ContourData) -> go.Figure:
    title = f"{d.metric} over {d.x_axis.param} × {d.y_axis.param}{shown_note(len(d.points_x), d.total, 'points')}"
    if not d.total:
        return empty_figure(title, NO_TRIAL)
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=d.x_edges,
            y=d.y_edges,
            z=d.z,
            colorscale="Viridis",
            colorbar_title=d.metric,
            hoverongaps=False,
            name="binned mean",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=d.points_x,
            y=d.points_y,
            mode="markers",
            name="trials",
            marker={"color": "white", "size": 6, "line": {"width": 1, "color": "black"}},
            customdata=d.points_value,
            hovertemplate=f"{d.x_axis.param} %{{x:.3g}}<br>{d.y_axis.param} %{{y:.3g}}<br>%{{customdata:.4g}}"
            "<extra></extra>",
        )
    )
    for axis, update in ((d.x_axis, fig.update_xaxes), (d.y_axis, fig.update_yaxes)):
        update(type="log", range=[math.log10(axis.low), math.log10(axis.high)], dtick="D2", title=axis.param)
    fig.update_layout(title=title, showlegend=False)
    return fig
