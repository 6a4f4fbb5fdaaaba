"""The rulebook of `afpe.search.analysis` on real Optuna trials: finished, best, the 10 % boundary rule."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from afpe.search import summarize, validate_spec
from afpe.search.analysis import best_trial, boundary_warnings, finished_count, ratio_range, state_counts
from afpe.search.spec import SearchSpace
from afpe.search.testing import make_trial, rows_cols_axes

SPEC = {
    "name": "rules",
    "task": "synthetic2d",
    "axes": rows_cols_axes(0.1, 10),
    "n_trials": 4,
}


def trials_of(*outcomes: tuple[float | None, TrialState]) -> list[optuna.trial.FrozenTrial]:
    return [
        make_trial(SPEC, {"s_rows": 1.0, "s_cols": 1.0}, value, state, number=number)
        for number, (value, state) in enumerate(outcomes)
    ]


def test_finished_is_complete_plus_pruned_never_fail() -> None:
    trials = trials_of((0.5, TrialState.COMPLETE), (None, TrialState.PRUNED), (None, TrialState.FAIL))
    assert finished_count(trials) == 2
    counts = state_counts(trials)
    assert counts["COMPLETE"] == counts["PRUNED"] == counts["FAIL"] == 1 and set(counts) >= {"RUNNING", "WAITING"}


def test_best_trial_is_complete_only_and_follows_the_direction() -> None:
    trials = trials_of((0.5, TrialState.COMPLETE), (0.9, TrialState.PRUNED), (0.7, TrialState.COMPLETE))
    assert best_trial(trials, "maximize").value == 0.7
    assert best_trial(trials, "minimize").value == 0.5
    assert best_trial(trials_of((None, TrialState.FAIL)), "maximize") is None


@pytest.mark.parametrize(
    "rows, flagged",
    [(1.0, False), (0.1 * 100**0.11, False), (0.1 * 100**0.09, True), (0.1 * 100**0.93, True), (10.0, True)],
)
def test_boundary_rule_is_the_outer_tenth_on_a_log_scale(rows: float, flagged: bool) -> None:
    space = validate_spec(SPEC).search_space()
    warnings = [w for w in boundary_warnings(space, {"s_rows": rows, "s_cols": 1.0}) if "s_rows=" in w]
    assert bool(warnings) is flagged
    if flagged:
        assert "10%" in warnings[0] and "log scale" in warnings[0]


def test_between_five_and_ten_percent_the_ratio_is_flagged_too() -> None:
    """The drift the service had: a best ratio at 7 % of its log range was flagged by the CLI only."""
    space = validate_spec(SPEC).search_space()
    low, high = ratio_range(space)
    assert (low, high) == pytest.approx((0.01, 100.0))
    ratio = low * (high / low) ** 0.93  # 93 % of the way: inside the 10 % rule, outside a 5 % one
    warnings = boundary_warnings(space, {"s_rows": ratio**0.5, "s_cols": ratio**-0.5})
    assert [w for w in warnings if "s_rows/s_cols" in w]


def test_summary_of_an_imported_spec_without_a_registered_task() -> None:
    spec = {**SPEC, "task": "imported", "metric": "auroc", "direction": "maximize"}
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec", spec)
    study.add_trials(trials_of((0.5, TrialState.COMPLETE), (None, TrialState.FAIL)))
    summary = summarize(study)
    assert summary.finished == 1 and summary.n_trials == 4 and summary.best_value == 0.5
    assert SearchSpace.from_spec(spec).ndim == 2
