"""When each trial ran, with its state (as Optuna's `plot_timeline`): concurrency, ASHA's stops and failures
over time; at most MAX_BARS bars (every FAIL and unfinished trial first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import FINISHED_STATES
from afpe.search.spec import SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import STATE_COLORS, shown_note

MAX_BARS = 2_000  # bars of the timeline


@dataclass(frozen=True)
class TimelineBar:
    number: int
    state: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class TimelineData:
    """When each trial ran (start to end; a running trial ends now), with its state: concurrency, ASHA's
    stops and failures over time. `bars` are at most MAX_BARS of the `total` trials that started."""

    bars: list[TimelineBar]
    total: int = 0


def timeline_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> TimelineData:
    """The trials that started, in number order: every one when there are at most MAX_BARS; else the unfinished
    and FAIL ones first (the latest when they are too many), then evenly spaced others. ValueError when none
    has started."""
    started = sorted((t for t in trials if t.datetime_start is not None), key=lambda t: t.number)
    if not started:
        raise ValueError("no trial has started yet")
    shown = started
    if len(started) > MAX_BARS:
        notable = [i for i, t in enumerate(started) if t.state not in FINISHED_STATES][-MAX_BARS:]
        rest = np.setdiff1d(np.arange(len(started)), notable)
        spare = MAX_BARS - len(notable)
        even = rest[np.linspace(0, len(rest) - 1, spare).astype(int)].tolist() if spare else []
        shown = [started[i] for i in sorted({*notable, *even})]
    now = dt.datetime.now()  # Optuna's datetimes are naive local time
    bars = [TimelineBar(t.number, t.state.name, t.datetime_start, t.datetime_complete or now) for t in shown]
    return TimelineData(bars, len(started))


@register_plot("timeline", timeline_data)
def timeline_figure(d: TimelineData) -> go.Figure:
    """One horizontal bar per trial shown from its start to its end, one trace per state (as Optuna's
    `plot_timeline`): three numbers per bar, at most `MAX_BARS` bars."""
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
        title=f"Timeline of trials{shown_note(len(d.bars), d.total)}",
        xaxis={"type": "date", "title": "time"},
        yaxis_title="trial",
    )
    return fig
