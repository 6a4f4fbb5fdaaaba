"""The optimization history: the metric per COMPLETE trial in trial order and the best value so far (at most
`MAX_POINTS` markers; every trial that improved the best kept, so the steps are exact)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials
from afpe.search.spec import SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import NO_TRIAL, empty_figure, shown_note, shown_points


@dataclass(frozen=True)
class HistoryData:
    """Objective per COMPLETE trial in trial order and the best value so far, at `shown_points` of the `total`
    trials: every trial that improved the best is kept, so the best-so-far steps are exact."""

    metric: str
    numbers: list[int]
    values: list[float]
    best_so_far: list[float]
    total: int = 0


def history_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> HistoryData:
    done = sorted(complete_trials(trials), key=lambda t: t.number)
    values = np.array([t.value for t in done], dtype=float)
    accumulate = np.maximum.accumulate if space.direction == "maximize" else np.minimum.accumulate
    best = accumulate(values) if len(values) else values
    improved = np.flatnonzero(np.diff(best, prepend=np.nan) != 0).tolist()  # NaN != x: the first one too
    shown = shown_points(values, space.direction, [*improved, len(values) - 1] if len(values) else [])
    return HistoryData(
        space.metric, [done[i].number for i in shown], values[shown].tolist(), best[shown].tolist(), len(done)
    )


@register_plot("history", history_data)
def history_figure(d: HistoryData) -> go.Figure:
    title = f"Optimization history{shown_note(len(d.numbers), d.total)}"
    if not d.total:
        return empty_figure(title, NO_TRIAL)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=d.numbers, y=d.values, mode="markers", name="trial"))
    fig.add_trace(go.Scatter(x=d.numbers, y=d.best_so_far, mode="lines", name="best so far", line_shape="hv"))
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title=d.metric)
    return fig
