"""The `importance` and `timeline` plot kinds: numbers from real Optuna trials (data apart from rendering)."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from optuna.trial import TrialState

from afpe.search.spec import SearchSpace
from afpe.search.testing import make_trial
from afpe.service.plots.importance import importance_data
from afpe.service.plots.kinds import build_figure
from afpe.service.plots.timeline import timeline_data


def test_importance_ranks_the_scale_the_metric_depends_on(spec_2d):
    space = SearchSpace.from_spec(spec_2d)
    rng = random.Random(1)
    trials = []
    for number in range(120):
        params = {"s_rows": math.exp(rng.uniform(math.log(0.1), math.log(4))), "s_cols": rng.uniform(0.1, 4)}
        value = -((math.log2(params["s_rows"]) - 0.5) ** 2) + rng.gauss(0, 0.01)  # s_cols does not matter
        trials.append(make_trial(spec_2d, params, value, number=number))
    repeat = make_trial(spec_2d, trials[0].params, 99.0, number=120)
    repeat.user_attrs["repeat_of"] = 0
    importance = importance_data([*trials, repeat], space)
    assert importance.n == 120, "repeats are not search trials"
    assert importance.params[-1] == "s_rows" and importance.importances[-1] > 0.8
    assert sum(importance.importances) == pytest.approx(1.0)
    figure = build_figure("importance", trials, space)
    assert list(figure.data[0].y) == importance.params
    with pytest.raises(ValueError, match="at least 2 complete trials"):
        importance_data(trials[:1], space)


def test_timeline_spans_each_trial_and_runs_a_running_one_until_now(spec_2d):
    space = SearchSpace.from_spec(spec_2d)
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    trials = []
    for number, state in enumerate(states):
        trial = make_trial(spec_2d, {"s_rows": 1.0, "s_cols": 1.0}, 0.5, state, number=number)
        trial.number = number
        trial.datetime_start = None if state == TrialState.WAITING else start + dt.timedelta(seconds=10 * number)
        finished = state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        trial.datetime_complete = start + dt.timedelta(seconds=10 * number + 5 + number) if finished else None
        trials.append(trial)
    before = dt.datetime.now()
    timeline = timeline_data(trials[::-1], space)
    assert [(b.number, b.state) for b in timeline.bars] == [(0, "COMPLETE"), (1, "PRUNED"), (2, "FAIL"), (3, "RUNNING")]
    assert [(b.end - b.start).total_seconds() for b in timeline.bars[:3]] == [5, 6, 7]
    assert before <= timeline.bars[3].end <= dt.datetime.now()
    figure = build_figure("timeline", trials, space)
    widths = {trace.name: list(trace.x) for trace in figure.data}
    assert widths["COMPLETE"] == [5000] and widths["PRUNED"] == [6000] and widths["FAIL"] == [7000]
    with pytest.raises(ValueError, match="no trial has started"):
        timeline_data(trials[4:], space)
