"""Repeats and the answer: the plan (top-k configurations x new seeds, only what is missing), mean and Student-t
interval, the Welch tie rule; and end to end on real Ray: repeats as Optuna trials, resume across both phases."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

from afpe.search import run_study, summarize, validate_spec
from afpe.search.driver import ray_session
from afpe.search.repeats import REPEAT_OF, estimate, plan_repeats, repeat_seeds, study_answer

SPEC = {
    "name": "answer",
    "task": "synthetic2d",
    "task_options": {"n_train": 64, "n_val": 32},
    "axes": [
        {"name": "rows", "grid_axes": [0], "low": 0.05, "high": 20},
        {"name": "cols", "grid_axes": [1], "low": 0.05, "high": 20},
    ],
    "metric": "val_loss",
    "direction": "minimize",
    "n_trials": 3,
    "trainer": {"epochs": 2, "batch_size": 32, "lr": 0.003, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1}},
    "resources": {"cpus": 1, "max_concurrent": 1},
}
DISTRIBUTIONS = {name: FloatDistribution(0.05, 20, log=True) for name in ("s_rows", "s_cols")}


def add(study: optuna.Study, value: float, rows: float, cols: float = 1.0, **attrs: object) -> None:
    study.add_trial(
        create_trial(
            value=value, params={"s_rows": rows, "s_cols": cols}, distributions=DISTRIBUTIONS, user_attrs=attrs
        )
    )


def test_plan_takes_the_top_k_and_skips_completed_repeats() -> None:
    spec = validate_spec({**SPEC, "repeats": {"top_k": 2, "seeds": 3}})
    study = optuna.create_study()
    for number, value in enumerate([0.5, 0.1, 0.3, 0.9]):
        add(study, value, rows=number + 1.0)
    plan = plan_repeats(spec, study.trials)
    assert [(p.repeat_of, p.index) for p in plan] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert plan[0].params == {"s_rows": 2.0, "s_cols": 1.0} and (plan[0].seed, plan[0].pe_seed) == repeat_seeds(spec, 1)
    assert repeat_seeds(spec, 2) == (2000, 2000)
    add(study, 0.2, rows=2.0, **{REPEAT_OF: 1, "repeat": 2})  # a done repeat is not planned again
    assert (1, 2) not in [(p.repeat_of, p.index) for p in plan_repeats(spec, study.trials)]
    assert plan_repeats(validate_spec(SPEC), study.trials) == []  # no repeats section, no plan


def test_estimate_is_the_mean_with_a_student_t_interval() -> None:
    values = [0.2, 0.25, 0.22, 0.31]
    result = estimate(0, {}, values, ratio=2.0)
    half = stats.t.ppf(0.975, 3) * statistics.stdev(values) / 2
    assert result.mean == pytest.approx(statistics.fmean(values)) and result.n == 4
    assert result.ci == pytest.approx((result.mean - half, result.mean + half))
    assert estimate(0, {}, [0.2], ratio=None).ci is None


def test_the_answer_is_the_best_mean_and_ties_are_the_indistinguishable_ratios() -> None:
    spec = validate_spec({**SPEC, "repeats": {"top_k": 4, "seeds": 3}})
    study = optuna.create_study()
    add(study, 0.05, rows=1.0)  # trial 0: the luckiest single run, whose repeats are bad (but noisy: a tie)
    add(study, 0.10, rows=2.0)  # trial 1: consistently good
    add(study, 0.11, rows=4.0)  # trial 2: as good as 1 within noise
    add(study, 0.50, rows=8.0)  # trial 3: consistently worse
    add(study, 0.90, rows=16.0)  # trial 4: not repeated (not in the top 4)
    repeats = {0: [0.6, 0.7, 0.65], 1: [0.11, 0.09, 0.12], 2: [0.12, 0.10, 0.13], 3: [0.52, 0.51, 0.50]}
    for number, values in repeats.items():
        for index, value in enumerate(values, 1):
            add(study, value, rows=study.trials[number].params["s_rows"], **{REPEAT_OF: number, "repeat": index})
    answer = study_answer(study.trials, spec.direction, spec.ratio)
    assert answer.best.number == 1 and answer.best.n == 4
    assert answer.best.mean == pytest.approx(statistics.fmean([0.10, *repeats[1]]))
    # Welch: trial 0 (0.05, 0.6, 0.7, 0.65) cannot be told from trial 1 at 5 % (p ~ 0.08); trial 3 can
    assert [e.number for e in answer.tied] == [1, 0, 2] and answer.ratio_range == (1.0, 4.0)
    assert answer.repeated == 4

    summary = summarize(study, spec)
    data = summary.to_json()
    assert data["best"]["number"] == 1 and data["best"]["n"] == 4 and len(data["best"]["ci"]) == 2
    assert data["ratio_range"] == [1.0, 4.0] and data["repeats"] == {"done": 12, "planned": 12}
    assert summary.finished == 5  # search trials only: repeats do not count towards n_trials
    assert any("not distinguishable" in line for line in summary.lines())


def test_without_repeats_the_best_is_the_best_single_trial() -> None:
    study = optuna.create_study()
    add(study, 0.3, rows=1.0)
    add(study, 0.2, rows=3.0)
    answer = study_answer(study.trials, "minimize", ("rows", "cols"))
    assert answer.best.number == 1 and answer.best.n == 1 and answer.best.ci is None and answer.repeated == 0


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    with ray_session(None):
        yield


def test_repeats_run_as_trials_and_resume_adds_them_to_a_finished_search(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFPE_TUNE_DIR", str(tmp_path / "tune"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_study(validate_spec(SPEC), storage=storage)  # the search alone
    with_repeats = validate_spec({**SPEC, "repeats": {"top_k": 2, "seeds": 2}})
    summary = run_study(with_repeats, storage=storage, resume=True)  # the repeats phase only
    trials = optuna.load_study(study_name="answer", storage=storage).trials
    assert len(trials) == 3 + 4 and all(t.state == TrialState.COMPLETE for t in trials)
    repeats = [t for t in trials if REPEAT_OF in t.user_attrs]
    top = sorted(trials[:3], key=lambda t: t.value)[:2]
    assert sorted((t.user_attrs[REPEAT_OF], t.user_attrs["repeat"]) for t in repeats) == sorted(
        (t.number, i) for t in top for i in (1, 2)
    )
    for trial in repeats:
        original = trials[trial.user_attrs[REPEAT_OF]]
        assert trial.params == original.params
        assert (trial.user_attrs["seed"], trial.user_attrs["pe_seed"]) == repeat_seeds(
            with_repeats, trial.user_attrs["repeat"]
        )
    assert len({t.value for t in repeats}) == 4, "new seeds give new values"
    assert summary.finished == 3 and summary.repeats_done == 4 and summary.answer.best.n == 3
    assert not math.isnan(summary.answer.best.mean) and summary.answer.best.ci is not None
    again = run_study(with_repeats, storage=storage, resume=True)  # nothing left: no trial added
    assert len(optuna.load_study(study_name="answer", storage=storage).trials) == 7 and again.repeats_done == 4


def test_a_baseline_encoding_is_one_configuration_over_seeds(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFPE_TUNE_DIR", str(tmp_path / "tune"))
    storage = f"sqlite:///{tmp_path / 'baseline.db'}"
    baseline = {**SPEC, "name": "sincos", "encoding": "sincos", "axes": [], "n_trials": 1}
    summary = run_study(validate_spec({**baseline, "repeats": {"top_k": 1, "seeds": 2}}), storage=storage)
    trials = optuna.load_study(study_name="sincos", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 and all(t.params == {} for t in trials)
    assert [t.user_attrs["seed"] for t in trials] == [0, 1000, 2000]
    assert summary.answer.best.n == 3 and summary.answer.best.ci is not None and summary.best_ratio is None
