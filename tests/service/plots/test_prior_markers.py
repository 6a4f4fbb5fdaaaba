"""The ratio plot draws the priors (`search/priors.py`): each complete prior at its ratio and its configuration's
mean, an open marker of its own and a legend entry naming its rules; a prior not run yet is not drawn."""

from __future__ import annotations

import json
import math

import optuna

from afpe.search.analysis import REPEAT_OF
from afpe.search.priors import PRIOR_KEY
from afpe.search.spec import SearchSpace
from afpe.search.testing import make_trial, quickstart_space
from afpe.service.plots.ratio import ratio_data, ratio_figure

SPEC = quickstart_space(prior=True, n_trials=6)


def test_each_complete_prior_has_its_marker_and_legend_entry() -> None:
    space = SearchSpace.from_spec(SPEC)
    values = {"extent": 0.71, "grid/max": 0.62}  # the third prior has not run yet
    trials = []
    for prior in space.priors:
        if prior.label in values:
            trial = make_trial(SPEC, prior.params, values[prior.label], number=len(trials))
            trial.set_user_attr(PRIOR_KEY, list(prior.names))
            trials.append(trial)
    for number, (d0, d1, value) in enumerate([(0.2, 0.6, 0.8), (1.2, 0.3, 0.5), (0.4, 1.1, 0.77)], len(trials)):
        trials.append(make_trial(SPEC, {"s_d0": d0, "s_d1": d1}, value, number=number))
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)

    data = ratio_data(study.trials, space)
    assert [(p.label, p.mean, p.n) for p in data.priors] == [("extent", 0.71, 1), ("grid/max", 0.62, 1)]
    figure = ratio_figure(data)
    drawn = [trace for trace in figure.data if trace.name and trace.name.startswith("prior ")]
    assert [trace.name for trace in drawn] == ["prior extent: r2 0.71 (trial 0)", "prior grid/max: r2 0.62 (trial 1)"]
    assert [(trace.x[0], trace.y[0]) for trace in drawn] == [(1.0, 0.71), (1.0, 0.62)]  # ratio s_d1 / s_d0 = 1
    symbols = [trace.marker.symbol for trace in drawn]
    assert len(set(symbols)) == 2 and all(symbol.endswith("-open") for symbol in symbols)
    other = {trace.marker.symbol for trace in figure.data if trace not in drawn and trace.marker is not None}
    assert not other & set(symbols)
    assert all(trace.showlegend is not False for trace in drawn)


def test_a_repeated_prior_is_drawn_at_its_mean_with_its_interval() -> None:
    """A prior among the best is repeated (as the quickstart's are): its marker sits at its configuration's mean with
    the 95 % interval as error bars, and the figure is one plotly accepts and serializes."""
    space = SearchSpace.from_spec(SPEC)
    prior = space.priors[0]
    trials = [make_trial(SPEC, prior.params, 0.70, number=0)]
    trials[0].set_user_attr(PRIOR_KEY, list(prior.names))
    for number, value in ((1, 0.74), (2, 0.66)):
        repeat = make_trial(SPEC, prior.params, value, number=number)
        repeat.set_user_attr(REPEAT_OF, 0)
        repeat.set_user_attr("repeat", number - 1)
        trials.append(repeat)
    trials.append(make_trial(SPEC, {"s_d0": 0.2, "s_d1": 0.6}, 0.5, number=3))
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)

    data = ratio_data(study.trials, space)
    [point] = data.priors
    assert point.n == 3 and math.isclose(point.mean, 0.70) and point.low < point.mean < point.high
    figure = ratio_figure(data)
    [drawn] = [trace for trace in figure.data if trace.name and trace.name.startswith("prior ")]
    assert drawn.name == f"prior {prior.label}: r2 0.7, mean of 3 (trial 0)"
    assert drawn.error_y.visible is True
    assert math.isclose(drawn.error_y.array[0], point.high - point.mean)
    assert math.isclose(drawn.error_y.arrayminus[0], point.mean - point.low)
    assert json.loads(figure.to_json())["data"]
