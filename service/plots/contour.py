"""The mean metric on a log10-spaced grid over the two ratio axes, with the trials as points (at most
`MAX_POINTS`, `shown_points`; the grid is computed over every trial)."""

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
from afpe.service.plots.shared import shown_note, shown_points


@dataclass(frozen=True)
class ContourData:
    """Mean metric on a log10-spaced grid over two scale axes (NaN where no trial fell), plus the points."""

    x_axis: AxisSpec
    y_axis: AxisSpec
    x_centers: list[float]
    y_centers: list[float]
    z: list[list[float | None]]
    points_x: list[float]
    points_y: list[float]
    points_value: list[float]
    metric: str
    total: int = 0  # trials in the grid; the points are `shown_points` of them


def contour_data(trials: Sequence[FrozenTrial], space: SearchSpace, bins: int = 20) -> ContourData:
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no contour to plot")
    x_axis, y_axis = (space.axis(name) for name in space.ratio)
    done = [t for t in complete_trials(trials) if x_axis.param in t.params and y_axis.param in t.params]
    px = np.array([t.params[x_axis.param] for t in done], dtype=float)
    py = np.array([t.params[y_axis.param] for t in done], dtype=float)
    pv = np.array([t.value for t in done], dtype=float)
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
        (10 ** ((x_edges[:-1] + x_edges[1:]) / 2)).tolist(),
        (10 ** ((y_edges[:-1] + y_edges[1:]) / 2)).tolist(),
        z,
        px[shown].tolist(),
        py[shown].tolist(),
        pv[shown].tolist(),
        space.metric,
        len(done),
    )


@register_plot("contour", contour_data)
def contour_figure(d: ContourData) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=d.x_centers,
            y=d.y_centers,
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
            marker={"color": "white", "size": 5, "line": {"width": 1, "color": "black"}},
        )
    )
    fig.update_xaxes(type="log", title=d.x_axis.param)
    fig.update_yaxes(type="log", title=d.y_axis.param)
    fig.update_layout(
        title=f"{d.metric} over {d.x_axis.param} × {d.y_axis.param}{shown_note(len(d.points_x), d.total, 'points')}"
    )
    return fig
