"""A real tiny study (local Ray, the real trainer, SQLite) with `prior` on: its first trials are the priors (their
params, the `prior` attr naming their rules), the summary reports them and the gain over the best, a resume runs
none of them again, and `prior: false` runs none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from afpe.search import run_study, validate_spec
from afpe.search.driver import ray_session
from afpe.search.priors import PRIOR_KEY
from afpe.search.testing import tiny_synthetic2d


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    with ray_session(None):
        yield


@pytest.fixture(autouse=True)
def private_tune_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFPE_TUNE_DIR", str(tmp_path / "tune"))


def test_the_priors_run_first_once_and_the_answer_reports_the_gain(local_ray: None, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'priors.db'}"
    spec = validate_spec({**tiny_synthetic2d(trainer={"epochs": 2}), "name": "priors", "n_trials": 3})
    priors = spec.search_space().priors
    assert len(priors) == 2  # an isotropic 8 x 8 grid: extent = grid/max, and 0.5/anisotropy

    summary = run_study(spec, storage=storage)
    trials = optuna.load_study(study_name="priors", storage=storage).trials
    assert [t.user_attrs.get(PRIOR_KEY) for t in trials] == [list(p.names) for p in priors] + [None]
    assert [t.params for t in trials[:2]] == [p.params for p in priors]
    assert [p.number for p in summary.priors] == [0, 1]
    assert summary.prior_gain is not None and summary.prior_gain.against.names in {p.names for p in priors}
    assert any(line.startswith("searching gained") for line in summary.lines())

    resumed = run_study(validate_spec({**spec.model_dump(), "n_trials": 4}), storage=storage, resume=True)
    trials = optuna.load_study(study_name="priors", storage=storage).trials
    assert len(trials) == 4 and resumed.finished == 4
    assert [t.user_attrs.get(PRIOR_KEY) for t in trials[2:]] == [None, None]  # no prior enqueued again


def test_prior_false_runs_no_prior(local_ray: None, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'off.db'}"
    spec = validate_spec({**tiny_synthetic2d(trainer={"epochs": 1}), "name": "off", "n_trials": 1, "prior": False})
    summary = run_study(spec, storage=storage)
    trial = optuna.load_study(study_name="off", storage=storage).trials[0]
    assert PRIOR_KEY not in trial.user_attrs and summary.priors == []
    assert summary.priors_note.startswith("off")
