"""Plotly rendering of the plot data in `data.py`, and `PLOT_KINDS`, the registry of plot kinds (the
convention of `afpe.core.registry`): each renderer is registered with its data function by
`@register_plot(name, data_function)`, in the order the study page shows them."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from afpe.core.registry import Registry
from afpe.search.spec import SearchSpace
from afpe.service.plots import data


@dataclass(frozen=True)
class PlotKind:
    """A plot kind: `data(trials, space)` computes its numbers, `render(numbers)` draws them."""

    name: str
    data: Callable[[Sequence[FrozenTrial], SearchSpace], Any]
    render: Callable[[Any], go.Figure]


PLOT_KINDS: Registry[PlotKind] = Registry("plot kind")


def register_plot(name: str, make_data: Callable[[Sequence[FrozenTrial], SearchSpace], Any]) -> Callable:
    """Decorator: register the decorated renderer as plot kind `name` with its data function."""

    def register(render: Callable[[Any], go.Figure]) -> Callable[[Any], go.Figure]:
        PLOT_KINDS.register(PlotKind(name, make_data, render))
        return render

    return register


def list_plot_kinds() -> list[str]:
    return PLOT_KINDS.names()


def build_figure(kind: str, trials: Sequence[FrozenTrial], space: SearchSpace) -> go.Figure:
    """The figure of `kind`; ValueError for an unknown kind or when the study has no data for it."""
    plot = PLOT_KINDS.get(kind)
    return plot.render(plot.data(trials, space))


BEST_MARKER = {"symbol": "star", "size": 16, "color": "crimson", "line": {"width": 1, "color": "black"}}
STATE_COLORS = {"COMPLETE": "steelblue", "PRUNED": "darkorange", "FAIL": "firebrick", "RUNNING": "gray"}


@register_plot("ratio", data.ratio_data)
def ratio_figure(d: data.RatioData) -> go.Figure:
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
        title=f"{d.metric} vs scale ratio s_{a}/s_{b}{_shown(len(d.x), d.total)}{_positions(d.positions)}",
        xaxis_title=f"log2(s_{a} / s_{b})",
        yaxis_title=d.metric,
    )
    return fig


def _positions(note: str | None) -> str:
    """The physical positions' note as a title's second line ('' for normalized positions)."""
    return "" if note is None else f"<br><sup>{html.escape(note, quote=False)}</sup>"


def _shown(shown: int, total: int, what: str = "trials") -> str:
    """' (n of N trials shown)' when a plot shows fewer than all, else ''."""
    return f" ({shown} of {total} {what} shown)" if shown < total else ""


@register_plot("axes", data.axes_data)
def axes_figure(d: data.AxesData) -> go.Figure:
    fig = make_subplots(
        rows=1,
        cols=max(len(d.panels), 1),
        shared_yaxes=True,
        subplot_titles=[p.axis.param + _shown(len(p.scales), p.total) for p in d.panels],
    )
    for i, panel in enumerate(d.panels, start=1):
        fig.add_trace(
            go.Scatter(x=panel.scales, y=panel.values, mode="markers", name=panel.axis.param, marker={"opacity": 0.7}),
            row=1,
            col=i,
        )
        if d.best is not None and panel.axis.param in d.best:
            fig.add_trace(
                go.Scatter(
                    x=[d.best[panel.axis.param]],
                    y=[_best_value(panel, d.best)],
                    mode="markers",
                    marker=BEST_MARKER,
                    name="best",
                    showlegend=i == 1,
                ),
                row=1,
                col=i,
            )
        fig.update_xaxes(type="log", range=[math.log10(panel.axis.low), math.log10(panel.axis.high)], row=1, col=i)
    fig.update_layout(title=f"{d.metric} vs each scale", yaxis_title=d.metric)
    return fig


def _best_value(panel: data.AxisPoints, best: dict[str, float]) -> float:
    return panel.values[panel.scales.index(best[panel.axis.param])]


@register_plot("contour", data.contour_data)
def contour_figure(d: data.ContourData) -> go.Figure:
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
        title=f"{d.metric} over {d.x_axis.param} × {d.y_axis.param}{_shown(len(d.points_x), d.total, 'points')}"
    )
    return fig


@register_plot("history", data.history_data)
def history_figure(d: data.HistoryData) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=d.numbers, y=d.values, mode="markers", name="trial"))
    fig.add_trace(go.Scatter(x=d.numbers, y=d.best_so_far, mode="lines", name="best so far", line_shape="hv"))
    fig.update_layout(
        title=f"Optimization history{_shown(len(d.numbers), d.total)}", xaxis_title="trial", yaxis_title=d.metric
    )
    return fig


MAX_CURVE_POINTS = 20_000  # points of the learning curves drawn; more curves x epochs are thinned per curve


@register_plot("intermediate", data.intermediate_data)
def intermediate_figure(d: data.IntermediateData) -> go.Figure:
    """The quantile bands of every curve (when the data has them), then one trace per trial state of the curves
    shown (joined with gaps), so the figure's size grows with the epochs, not the trials; past MAX_CURVE_POINTS
    each curve keeps every k-th epoch and its last."""
    total = sum(len(curve.steps) for curve in d.curves)
    stride = max(1, math.ceil(total / MAX_CURVE_POINTS))
    fig = go.Figure()
    if d.bands is not None:
        low, median, high = d.bands.quantiles
        labels = [f"{q:.0%}" for q in data.BAND_QUANTILES]
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


@register_plot("similarity", data.similarity_data)
def similarity_figure(d: data.SimilarityData) -> go.Figure:
    scales = ", ".join(f"{s:.3g}" for s in d.best_scales)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=[f"best scales ({scales})", f"isotropic ({d.isotropic_scale:.3g} on every axis)"]
    )
    for col, values in ((1, d.best_map), (2, d.isotropic_map)):
        fig.add_trace(
            go.Heatmap(
                z=values,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                showscale=col == 2,
                colorbar_title="cosine",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(
            scaleanchor=f"x{col if col > 1 else ''}",
            autorange="reversed",
            row=1,
            col=col,
            title=d.axis_labels[0] if len(d.axis_labels) == 2 else "",
        )
        fig.update_xaxes(title=d.axis_labels[-1] if d.axis_labels else "", row=1, col=col)
    fig.update_layout(title=f"{d.encoding} similarity to the centre position{_positions(d.positions)}")
    return fig


@register_plot("importance", data.importance_data)
def importance_figure(d: data.ImportanceData) -> go.Figure:
    fig = go.Figure(go.Bar(x=d.importances, y=d.params, orientation="h", marker_color="steelblue"))
    fig.update_layout(
        title=f"Scale importance for {d.metric} (PED-ANOVA over {d.n} complete trials)",
        xaxis_title="importance (sums to 1)",
        yaxis_title="scale",
    )
    return fig


@register_plot("timeline", data.timeline_data)
def timeline_figure(d: data.TimelineData) -> go.Figure:
    """One horizontal bar per trial shown from its start to its end, one trace per state (as Optuna's
    `plot_timeline`): three numbers per bar, at most `data.MAX_BARS` bars."""
    fig = go.Figure()
    for state in dict.fromkeys(bar.state for bar in d.bars):
        bars = [bar for bar in d.bars if bar.state == state]
        fig.add_trace(
            go.Bar(
                base=[bar.start.isoformat() for bar in bars],
                x=[(bar.end - bar.start).total_seconds() * 1000 for bar in bars],
                y=[bar.number for bar in bars],
                orientation="h",
                name=state,
                marker_color=STATE_COLORS.get(state, "gray"),
                hovertemplate=f"trial %{{y}} ({state})<br>%{{base}} + %{{x:.0f}} ms<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Timeline of trials{_shown(len(d.bars), d.total)}",
        xaxis={"type": "date", "title": "time"},
        yaxis_title="trial",
    )
    return fig
