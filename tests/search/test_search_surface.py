"""The smoothed optimum: a GP over all complete trials finds a planted optimum ratio, with an interval."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search.spec import SearchSpace
from afpe.search.summary import summarize_trials
from afpe.search.surface import MAX_TRIALS, MIN_TRIALS, smoothed_optimum

DIST = FloatDistribution(0.01, 10.0, log=True)


def space(direction: str = "minimize") -> SearchSpace:
    axes = [
        {"name": "xy", "grid_axes": [0, 1], "low": 0.01, "high": 10.0},
        {"name": "z", "grid_axes": [2], "low": 0.01, "high": 10.0},
    ]
    spec = {"axes": axes, "ratio": ["z", "xy"], "metric": "val_loss", "direction": direction, "n_trials": 24}
    return SearchSpace.from_spec(spec, ndim=3)


def bowl_trials(n: int, seed: int, optimum_ratio: float, noise: float, sign: float = 1.0) -> list:
    """Trials of f = (log10 ratio - log10 optimum)^2 + 0.3 (log10 s_xy + 0.5)^2 + noise, at random scales."""
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n):
        xy, z = 10 ** rng.uniform(-2, 1, 2)
        value = (math.log10(z / xy) - math.log10(optimum_ratio)) ** 2 + 0.3 * (math.log10(xy) + 0.5) ** 2
        trials.append(
            optuna.trial.create_trial(
                params={"s_xy": xy, "s_z": z},
                distributions={"s_xy": DIST, "s_z": DIST},
                value=sign * (value + rng.normal(0.0, noise)),
            )
        )
    return trials


@pytest.mark.parametrize("planted", [0.25, 4.0])
def test_the_planted_ratio_lies_in_the_interval_and_the_estimate_is_within_2x(planted: float) -> None:
    optimum = smoothed_optimum(bowl_trials(40, seed=1, optimum_ratio=planted, noise=0.1), space())
    assert optimum is not None and optimum.ci is not None
    low, high = optimum.ci
    assert low <= planted <= high
    assert abs(math.log2(optimum.ratio / planted)) <= 1.0
    assert optimum.n == 40


def test_the_interval_widens_with_noise() -> None:
    quiet = smoothed_optimum(bowl_trials(24, seed=2, optimum_ratio=1.0, noise=0.02), space())
    loud = smoothed_optimum(bowl_trials(24, seed=2, optimum_ratio=1.0, noise=1.0), space())
    width = lambda o: math.log(o.ci[1] / o.ci[0])  # noqa: E731
    assert width(loud) > width(quiet)


def test_maximising_finds_the_same_ratio_as_minimising_the_negation() -> None:
    low = smoothed_optimum(bowl_trials(20, seed=3, optimum_ratio=2.0, noise=0.05), space("minimize"))
    high = smoothed_optimum(bowl_trials(20, seed=3, optimum_ratio=2.0, noise=0.05, sign=-1.0), space("maximize"))
    assert high.ratio == pytest.approx(low.ratio)
    assert high.value == pytest.approx(-low.value, rel=1e-6)


def test_too_few_trials_failed_ones_and_a_space_without_axes_give_none() -> None:
    trials = bowl_trials(MIN_TRIALS - 1, seed=4, optimum_ratio=1.0, noise=0.1)
    trials.append(
        optuna.trial.create_trial(
            params={"s_xy": 1.0, "s_z": 1.0}, distributions={"s_xy": DIST, "s_z": DIST}, state=TrialState.FAIL
        )
    )
    assert smoothed_optimum(trials, space()) is None
    assert smoothed_optimum(bowl_trials(10, 4, 1.0, 0.1), SearchSpace.from_spec({"metric": "val_loss"}, ndim=3)) is None


def test_status_prints_and_serialises_the_smoothed_optimum() -> None:
    summary = summarize_trials("s", bowl_trials(24, seed=5, optimum_ratio=4.0, noise=0.1), space())
    data = summary.to_json()["optimum"]
    assert data["n"] == 24 and data["ci"][0] <= data["ratio"] <= data["ci"][1]
    assert set(data["scales"]) == {"xy", "z"}
    line = next(line for line in summary.lines() if line.startswith("smoothed optimum"))
    assert "ratio s_z/s_xy" in line and "95% CI" in line


def test_a_large_study_is_fitted_on_a_bounded_seeded_subset() -> None:
    """A GP is cubic in its points: 20,000 imported trials once took 24 GB in one fit."""
    trials = bowl_trials(MAX_TRIALS + 100, seed=6, optimum_ratio=2.0, noise=0.1)
    optimum = smoothed_optimum(trials, space())
    assert optimum.n == MAX_TRIALS and optimum == smoothed_optimum(trials, space())
    assert optimum.ci[0] <= 2.0 <= optimum.ci[1]
