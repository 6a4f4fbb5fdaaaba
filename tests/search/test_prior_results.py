"""The answer's priors (`search/prior_results.py` through `summarize_trials`): each prior's result, the search's
gain over the best prior with Welch's 95 % interval (SciPy's, computed here on the same values), its sign when
minimising, and why there is no interval; as `afpe status` prints it and as its JSON carries it."""

from __future__ import annotations

import optuna
import pytest
from scipy import stats

from afpe.search.spec import SearchSpace
from afpe.search.summary import summarize_trials
from afpe.search.testing import quickstart_space, repeated_trials

SPEC = quickstart_space(prior=True, n_trials=6)


def trials_with(prior_values: list[list[float]], searched: list[tuple[float, float, list[float]]]) -> list:
    """The quickstart's priors with `prior_values` (the first value its search trial, the rest repeats), then
    search trials (s_d0, s_d1, values) likewise."""
    space = SearchSpace.from_spec(SPEC)
    runs = [(p.params, list(p.names), values) for p, values in zip(space.priors, prior_values, strict=True)]
    runs += [({"s_d0": d0, "s_d1": d1}, None, values) for d0, d1, values in searched]
    trials = repeated_trials(SPEC, runs)
    study = optuna.create_study(direction=SPEC["direction"])
    study.add_trials(trials)
    return study.trials


def test_the_gain_over_the_best_prior_is_welchs_difference_of_means() -> None:
    search_values, prior_values = [0.82, 0.80, 0.85], [0.74, 0.77, 0.75]
    trials = trials_with([[0.70], prior_values, [0.72]], [(0.3, 0.9, search_values), (1.5, 0.2, [0.4])])
    summary = summarize_trials("q", trials, SearchSpace.from_spec(SPEC))
    assert [p.label for p in summary.priors] == ["extent", "grid/max", "0.5/anisotropy"]
    assert [p.estimate.n for p in summary.priors] == [1, 3, 1]
    gain = summary.prior_gain
    assert gain.against.label == "grid/max"  # the best mean among the priors
    interval = stats.ttest_ind(search_values, prior_values, equal_var=False).confidence_interval(0.95)
    assert gain.difference == pytest.approx(sum(search_values) / 3 - sum(prior_values) / 3)
    assert gain.ci == pytest.approx((interval.low, interval.high))
    assert gain.n == (3, 3) and not gain.answer_is_prior
    line = next(line for line in summary.lines() if line.startswith("searching gained"))
    assert line == (
        f"searching gained {gain.difference:+.3g} r2 over the best prior (grid/max, {gain.prior_mean:.4g}), "
        f"95% CI [{interval.low:.3g}, {interval.high:.3g}]"
    )
    data = summary.to_json()
    assert data["prior_gain"]["ci"] == pytest.approx([interval.low, interval.high])
    assert [p["n"] for p in data["priors"]] == [1, 3, 1] and data["priors"][1]["ci"] is not None
    assert data["priors"][0]["rules"][0].startswith("scales proportional to each axis's extent")


def test_when_minimising_a_gain_is_the_prior_minus_the_answer() -> None:
    spec = {**SPEC, "metric": "mae", "direction": "minimize"}
    space = SearchSpace.from_spec(spec)
    trials = trials_with([[0.5, 0.52], [0.6], [0.7]], [(0.3, 0.9, [0.3, 0.35, 0.31])])
    gain = summarize_trials("q", trials, space).prior_gain
    assert gain.against.label == "extent" and gain.difference == pytest.approx(0.51 - 0.32)
    assert gain.ci[0] > 0  # searching was better, by an interval that excludes 0


def test_no_interval_when_a_side_ran_once_and_none_when_the_answer_is_a_prior() -> None:
    once = summarize_trials("q", trials_with([[0.7], [0.6], [0.5]], [(0.3, 0.9, [0.8])]), SearchSpace.from_spec(SPEC))
    assert once.prior_gain.ci is None
    assert once.prior_gain.ci_note == "no interval: the search's answer and the best prior ran once"
    won = summarize_trials(
        "q", trials_with([[0.9, 0.91], [0.6], [0.5]], [(0.3, 0.9, [0.8, 0.79])]), SearchSpace.from_spec(SPEC)
    )
    assert won.prior_gain.answer_is_prior and won.prior_gain.difference == 0.0 and won.prior_gain.ci is None
    assert "is this prior" in won.prior_gain.ci_note


def test_priors_not_run_yet_are_listed_and_a_study_without_them_says_why() -> None:
    space = SearchSpace.from_spec(SPEC)
    summary = summarize_trials("q", [], space)
    assert [(p.label, p.number) for p in summary.priors] == [(p.label, None) for p in space.priors]
    assert summary.prior_gain is None
    assert "  extent: not run yet, at s_d0=0.5477, s_d1=0.5477, ratio 1" in summary.lines()
    before = summarize_trials("q", [], SearchSpace.from_spec(quickstart_space()))  # a spec from before priors
    assert before.priors == [] and before.priors_note.startswith("off")
    fourier = SearchSpace.from_spec(
        quickstart_space(encoding="fourier", axes=[{"name": "all", "grid_axes": [0, 1, 2], "low": 0.1, "high": 3}])
    )
    assert "priors: none: the encoding has no per-axis scales" in summarize_trials("f", [], fourier).lines()[-1]
