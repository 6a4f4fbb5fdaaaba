"""Issue 14 row 14: the learning-curves figure stays bounded at 2000 trials x 100 epochs (one trace per state,
thinned epochs, every trial still there), and a plot is only sent again when its study changed (ETag)."""

from __future__ import annotations

import json

import optuna
from optuna.trial import TrialState

from afpe.search.spec import SearchSpace
from afpe.search.testing import make_trial
from afpe.service.plots.figures import MAX_CURVE_POINTS, build_figure

SPEC = {"name": "long", "task": "synthetic2d", "axes": [{"name": "a", "grid_axes": [0], "low": 0.1, "high": 10}]}


def long_trials(n: int, epochs: int) -> list[optuna.trial.FrozenTrial]:
    trials = []
    for number in range(n):
        pruned = number % 4 == 3
        curve = {e: 1.0 / e + number * 1e-4 for e in range(1, (epochs // 3 if pruned else epochs) + 1)}
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trials.append(make_trial(SPEC, {"s_a": 0.1 + number % 50 / 5}, curve[max(curve)], state, curve, number))
    return trials


def test_learning_curves_of_2000_trials_x_100_epochs_stay_small() -> None:
    study = optuna.create_study(study_name="long")
    study.add_trials(long_trials(2000, 100))
    figure = build_figure("intermediate", study.trials, SearchSpace.from_spec(SPEC))
    text = figure.to_json()
    assert len(text) < 1_500_000, f"{len(text) / 1e6:.1f} MB"  # one trace per trial and every epoch: 4.9 MB
    traces = json.loads(text)["data"]
    assert sorted(trace["name"] for trace in traces) == ["COMPLETE", "PRUNED"]
    shown = {n for trace in traces for n in trace["customdata"] if n is not None}
    assert shown == set(range(2000)), "every trial keeps a curve"
    assert sum(1 for trace in traces for x in trace["x"] if x is not None) <= MAX_CURVE_POINTS + 2000
    few = study.trials[:10]
    small = build_figure("intermediate", few, SearchSpace.from_spec(SPEC))
    every_epoch = sum(len(t.intermediate_values) + 1 for t in few)  # + 1: the gap after each curve
    assert sum(len(t.x) for t in small.data) == every_epoch, "few points: every epoch kept"


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
    study = optuna.load_study(study_name="tagged", storage=client.app.state.manager.queries.storage)
    trial = study.trials[0]
    study.add_trial(
        optuna.trial.create_trial(params=trial.params, distributions=trial.distributions, value=2.0)
    )  # a new trial: the figure changes
    changed = client.get("/api/studies/tagged/plots/ratio", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
