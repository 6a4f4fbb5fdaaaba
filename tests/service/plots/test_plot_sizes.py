"""Issue 14 row 14 and issue 13 item 7: figures stay bounded however many trials a study has (learning curves:
the best curves over quantile bands of all; scatters: the best exactly and a sample; the timeline: every FAIL
first), and a plot is only sent again when its figure changed (ETag)."""

from __future__ import annotations

import datetime as dt
import json
import math
import random

import numpy as np
import optuna
from optuna.trial import TrialState

from afpe.search.spec import SearchSpace
from afpe.search.testing import make_trial, peak_at_ratio_one, rows_cols_axes
from afpe.service.plots.axes import axes_data
from afpe.service.plots.history import history_data
from afpe.service.plots.intermediate import BEST_CURVES
from afpe.service.plots.kinds import build_figure
from afpe.service.plots.ratio import ratio_data
from afpe.service.plots.shared import MAX_POINTS
from afpe.service.plots.timeline import MAX_BARS, timeline_data

SPEC = {"name": "long", "task": "synthetic2d", "axes": [{"name": "a", "grid_axes": [0], "low": 0.1, "high": 10}]}
WIDE = {"name": "wide", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc"}


def long_trials(n: int, epochs: int) -> list[optuna.trial.FrozenTrial]:
    trials = []
    for number in range(n):
        pruned = number % 4 == 3
        curve = {e: 1.0 / e + number * 1e-4 for e in range(1, (epochs // 3 if pruned else epochs) + 1)}
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trials.append(make_trial(SPEC, {"s_a": 0.1 + number % 50 / 5}, curve[max(curve)], state, curve, number))
    return trials


def wide_trials(n: int) -> list[optuna.trial.FrozenTrial]:
    """`n` trials over rows x cols (every 7th FAIL), one a minute, 4 at a time."""
    rng = random.Random(1)
    trials = []
    for number in range(n):
        params = {p: math.exp(rng.uniform(math.log(0.1), math.log(4.0))) for p in ("s_rows", "s_cols")}
        value = peak_at_ratio_one([params["s_rows"], params["s_cols"]]) + rng.gauss(0, 0.01)
        state = TrialState.FAIL if number % 7 == 6 else TrialState.COMPLETE
        trial = make_trial(WIDE, params, value, state, {1: value}, number)
        trial.datetime_start = dt.datetime(2026, 1, 1) + dt.timedelta(minutes=number // 4)
        trial.datetime_complete = trial.datetime_start + dt.timedelta(seconds=50)
        trials.append(trial)
    return trials


def test_learning_curves_of_2000_trials_x_100_epochs_are_the_best_over_bands_of_all() -> None:
    study = optuna.create_study(study_name="long", direction="maximize")
    study.add_trials(long_trials(2000, 100))
    figure = build_figure("intermediate", study.trials, SearchSpace.from_spec(SPEC))
    text = figure.to_json()
    assert len(text) < 150_000, f"{len(text) / 1e3:.0f} kB"  # one trace per trial and every epoch: 4.9 MB
    traces = {trace.get("name"): trace for trace in json.loads(text)["data"]}
    curves = traces["COMPLETE"]
    shown = {n for n in curves["customdata"] if n is not None}
    assert len(shown) == BEST_CURVES and study.best_trial.number in shown
    best = [(x, y) for x, y, n in zip(curves["x"], curves["y"], curves["customdata"], strict=True) if n == 1998]
    assert best == sorted(study.best_trial.intermediate_values.items()), "the best curve, every epoch"
    for epoch in (1, 40):  # the bands are over every trial that reported the epoch
        values = [t.intermediate_values[epoch] for t in study.trials if epoch in t.intermediate_values]
        assert traces["median"]["y"][epoch - 1] == np.quantile(values, 0.5)
        assert traces["median"]["customdata"][epoch - 1] == len(values)
    assert len(traces["median"]["x"]) == 100
    few = study.trials[:10]
    small = build_figure("intermediate", few, SearchSpace.from_spec(SPEC))
    every_epoch = sum(len(t.intermediate_values) + 1 for t in few)  # + 1: the gap after each curve
    assert sum(len(t.x) for t in small.data) == every_epoch, "few curves: every one, every epoch"


def test_scatters_and_timeline_of_3000_trials_are_bounded_and_keep_the_best() -> None:
    study = optuna.create_study(study_name="wide", direction="maximize")
    study.add_trials(wide_trials(3000))
    trials, space = study.trials, SearchSpace.from_spec(WIDE)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial.number
    texts = {kind: build_figure(kind, trials, space).to_json() for kind in ("ratio", "axes", "contour", "history")}
    assert max(len(text) for text in texts.values()) < 250_000, {kind: len(text) for kind, text in texts.items()}
    ratio = json.loads(texts["ratio"])["data"]
    # no repeats: the answer (the star) is the best run, at its value; the best trial's marker is kept
    assert [t["customdata"] for t in ratio if t.get("name", "").startswith("answer")] == [[[best, 1]]]
    assert best in next(t for t in ratio if t.get("name") == "trials (runs)")["customdata"]
    assert len(next(t for t in ratio if t.get("name") == "trials (runs)")["x"]) == MAX_POINTS
    assert sum(ratio_data(trials, space).trend.counts) == len(complete), "the trend is over every trial"
    history = history_data(trials, space)
    assert len(history.numbers) == MAX_POINTS and history.total == len(complete)
    running = np.maximum.accumulate([t.value for t in complete])
    improved = {t.number for t, b, before in zip(complete, running, [-np.inf, *running], strict=False) if b > before}
    assert improved <= set(history.numbers) and history.best_so_far[-1] == study.best_value
    axes = axes_data(trials, space)
    assert all(len(p.scales) == MAX_POINTS and study.best_params[p.axis.param] in p.scales for p in axes.panels)
    timeline = timeline_data(trials, space)
    assert len(timeline.bars) == MAX_BARS and timeline.total == 3000
    failed = [b.number for b in timeline.bars if b.state == "FAIL"]
    assert failed == [t.number for t in trials if t.state == TrialState.FAIL], "every FAIL is shown"
    assert len(build_figure("timeline", trials, space).to_json()) < 300_000


def test_a_plot_is_sent_again_only_when_the_study_changed(client, auth) -> None:
    csv = "s_rows,s_cols,value\n" + "\n".join(f"{0.1 * (i % 9 + 1)},{0.2 * (i % 5 + 1)},{i / 40}" for i in range(40))
    files = {"file": ("t.csv", csv, "text/csv")}
    assert client.post("/api/studies/import", files=files, data={"name": "tagged"}, headers=auth).status_code == 201
    first = client.get("/api/studies/tagged/plots/ratio")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.json()["data"]
    again = client.get("/api/studies/tagged/plots/ratio", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other_kind = client.get("/api/studies/tagged/plots/axes", headers={"If-None-Match": etag})
    assert other_kind.status_code == 200
    study = optuna.load_study(study_name="tagged", storage=client.app.state.trials.reads.storage)
    trial = study.trials[0]
    study.add_trial(
        optuna.trial.create_trial(params=trial.params, distributions=trial.distributions, value=2.0)
    )  # a new trial: the figure changes
    changed = client.get("/api/studies/tagged/plots/ratio", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
