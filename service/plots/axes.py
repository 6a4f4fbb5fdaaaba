"""The metric against each scale (log axes) over the COMPLETE trials, the study's answer (its best configuration,
`repeats.study_answer`) starred at its mean over its runs; at most `MAX_POINTS` markers per panel
(`shown_points`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from afpe.search.analysis import complete_trials
from afpe.search.repeats import study_answer
from afpe.search.spec import AxisSpec, SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import BEST_MARKER, NO_TRIAL, empty_figure, shown_note, shown_points


@dataclass(frozen=True)
class AxisPoints:
    axis: AxisSpec
    scales: list[float]
    values: list[float]
    total: int = 0  # trials with this scale; `shown_points` of them are kept


@dataclass(frozen=True)
class AxesData:
    """Metric vs each scale (log axes), COMPLETE trials only; `best` is the answer's scales, `best_mean` its mean
    over its `best_n` runs."""

    metric: str
    panels: list[AxisPoints]
    best: dict[str, float] | None
    best_mean: float | None = None
    best_n: int = 0


def axes_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> AxesData:
    done = complete_trials(trials)
    answer = study_answer(trials, space.direction, space.ratio)
    best = answer.best if answer else None
    panels = []
    for axis in space.axes:
        having = [t for t in done if axis.param in t.params]
        always = [i for i, t in enumerate(having) if best is not None and t.number == best.number]
        kept = [having[i] for i in shown_points([t.value for t in having], space.direction, always)]
        panels.append(AxisPoints(axis, [t.params[axis.param] for t in kept], [t.value for t in kept], len(having)))
    if best is None:
        return AxesData(space.metric, panels, None)
    return AxesData(space.metric, panels, dict(best.params), best.mean, best.n)


@register_plot("axes", axes_data)
def axes_figure(d: AxesData) -> go.Figure:
    if not any(p.total for p in d.panels):
        return empty_figure(f"{d.metric} vs each scale", NO_TRIAL if d.panels else "the study searches no scale")
    fig = make_subplots(
        rows=1,
        cols=max(len(d.panels), 1),
        shared_yaxes=True,
        subplot_titles=[p.axis.param + shown_note(len(p.scales), p.total) for p in d.panels],
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
                    y=[d.best_mean],
                    mode="markers",
                    marker=BEST_MARKER,
                    name=f"answer: best mean of {d.best_n} runs" if d.best_n > 1 else "answer: best run (no repeats)",
                    showlegend=i == 1,
                ),
                row=1,
                col=i,
            )
        fig.update_xaxes(type="log", range=[math.log10(panel.axis.low), math.log10(panel.axis.high)], row=1, col=i)
    fig.update_layout(title=f"{d.metric} vs each scale", yaxis_title=d.metric)
    return fig
