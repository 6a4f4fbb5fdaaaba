"""Issue 27 item 1: the study's answer, one rule: intervals that cannot be estimated say why instead of being
printed, imported seeds of one configuration are grouped by params, the smoothed optimum's scales give exactly
its ratio, and the status prints them with the fixed grid axes and the scales to use."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from afpe.search.repeats import estimate, study_answer
from afpe.search.spec import SearchSpace
from afpe.search.summary import summarize_trials
from afpe.search.testing import quickstart_space

DIST = FloatDistribution(0.1, 3.0, log=True)
QUICK = quickstart_space()


def trial(d0: float, d1: float, value: float, **attrs: object) -> optuna.trial.FrozenTrial:
    return create_trial(
        params={"s_d0": d0, "s_d1": d1}, distributions={"s_d0": DIST, "s_d1": DIST}, value=value, user_attrs=attrs
    )


def test_an_interval_that_cannot_be_estimated_says_why() -> None:
    one = estimate(0, {}, [0.8], ratio=None)
    same = estimate(0, {}, [0.8, 0.8, 0.8], ratio=None)
    assert one.ci is None and one.ci_note == "interval not estimable: one run (no repeats)"
    assert same.ci is None and same.ci_note == "interval not estimable: its 3 runs gave the same value"
    assert estimate(0, {}, [0.7, 0.8], ratio=None).ci_note is None


def test_imported_seeds_of_one_configuration_are_one_estimate() -> None:
    """A CSV of runs without `repeat_of`: COMPLETE search trials with the same params are one configuration."""
    trials = [trial(0.2, 0.8, 0.80), trial(0.2, 0.8, 0.84), trial(0.2, 0.8, 0.82), trial(1.0, 1.0, 0.83)]
    answer = study_answer(trials, "maximize", ("d1", "d0"))
    assert answer.best.n == 3 and answer.best.values == [0.84, 0.82, 0.80] and answer.best.ratio == 4.0
    assert answer.best.ci is not None and answer.best.ci[0] < 0.82 < answer.best.ci[1]


def smooth_trials(n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    """r2 = 0.9 - (log10 ratio - log10 3)^2 - 0.1 (log10 d0 + 0.5)^2 + noise, at random scales."""
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n):
        d0, d1 = 10 ** rng.uniform(-1, np.log10(3.0), 2)
        value = 0.9 - (np.log10(d1 / d0) - np.log10(3.0)) ** 2 - 0.1 * (np.log10(d0) + 0.5) ** 2
        trials.append(trial(float(d0), float(d1), float(value + rng.normal(0, 0.02))))
    return trials


def test_the_smoothed_optimum_scales_give_its_ratio_and_the_status_prints_them() -> None:
    space = SearchSpace.from_spec(QUICK)
    summary = summarize_trials("quick", smooth_trials(24, seed=1), space)
    data = summary.to_json()
    optimum = data["optimum"]
    assert optimum["scales"]["d1"] / optimum["scales"]["d0"] == optimum["ratio"]
    assert optimum["grid_scales"] == [optimum["scales"]["d0"], optimum["scales"]["d1"], 1.0]
    assert optimum["ci"][0] <= optimum["ratio"] <= optimum["ci"][1]
    assert data["fixed"] == {"d2": 1.0}
    assert data["use"]["source"] == "smoothed optimum" and data["use"]["params"] == optimum["params"]
    text = "\n".join(summary.lines())
    line = next(line for line in summary.lines() if line.startswith("smoothed optimum"))
    assert f"ratio s_d1/s_d0 = {optimum['ratio']:.4g}" in line and "d2=1 (fixed)" in line
    assert f"s_d0={optimum['scales']['d0']:.4g}, s_d1={optimum['scales']['d1']:.4g}" in line
    assert "scales to use: " in text and "the smoothed optimum" in text
    assert "interval not estimable: one run (no repeats)" in text  # no repeats: the best has no interval


def test_a_zero_width_optimum_interval_is_not_printed() -> None:
    """Six trials, one far ahead: every posterior draw picks it, and [r, r] would read as certainty."""
    values = [0.1, 0.12, 0.11, 0.95, 0.09, 0.1]
    scales = [(0.2, 0.3), (2.5, 0.15), (1.0, 1.0), (0.3, 1.2), (0.12, 2.8), (2.0, 2.5)]
    trials = [trial(d0, d1, v) for (d0, d1), v in zip(scales, values, strict=True)]
    summary = summarize_trials("six", trials, SearchSpace.from_spec(QUICK))
    optimum = summary.to_json()["optimum"]
    assert optimum["ci"] is None and optimum["ci_note"].startswith("interval not estimable: all 256 posterior draws")
    assert optimum["ratio"] == pytest.approx(4.0)
    line = next(line for line in summary.lines() if line.startswith("smoothed optimum"))
    assert "95% CI" not in line and "interval not estimable" in line


def test_too_few_trials_for_a_smoothed_optimum_say_so_and_use_the_best_configuration() -> None:
    summary = summarize_trials("two", [trial(0.2, 0.8, 0.8), trial(1.0, 1.0, 0.7)], SearchSpace.from_spec(QUICK))
    data = summary.to_json()
    assert data["optimum"] is None and data["optimum_note"] == "not estimable: it needs 6 complete trials, 2 so far"
    assert data["use"]["source"] == "best configuration" and data["use"]["grid_scales"] == [0.2, 0.8, 1.0]
    assert "smoothed optimum: not estimable" in "\n".join(summary.lines())
