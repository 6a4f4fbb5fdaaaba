"""Fixtures of the service tests: real Optuna studies written with the search layout (see the context contract)."""

from __future__ import annotations

import copy
import math
import random

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

SPEC_2D = {
    "name": "ratio-demo",
    "task": "synthetic",
    "encoding": "afpe",
    "axes": [
        {"name": "rows", "grid_axes": [0], "low": 0.1, "high": 4.0},
        {"name": "cols", "grid_axes": [1], "low": 0.1, "high": 4.0},
    ],
    "ratio": ["rows", "cols"],
    "direction": "maximize",
    "metric": "auroc",
    "pe_seed": 3,
    "trainer": {"model": {"dim": 32}},
}


def objective(rows: float, cols: float) -> float:
    """A known landscape: peaks at log2(rows/cols) = 1."""
    return 1.0 - 0.1 * (math.log2(rows / cols) - 1.0) ** 2


def add_trials(study: optuna.Study, spec: dict, n: int, seed: int = 0, pruned_every: int = 0) -> None:
    """n trials with params s_<axis>, the contract's user attrs and one intermediate value per epoch."""
    rng = random.Random(seed)
    axes = spec["axes"]
    distributions = {f"s_{a['name']}": FloatDistribution(a["low"], a["high"], log=True) for a in axes}
    trials = []
    for number in range(n):
        params = {f"s_{a['name']}": math.exp(rng.uniform(math.log(a["low"]), math.log(a["high"]))) for a in axes}
        value = objective(*list(params.values())[:2]) + rng.gauss(0, 0.01)
        pruned = pruned_every and number % pruned_every == pruned_every - 1
        curve = {1: value - 0.2, 2: value - 0.05} if not pruned else {1: value - 0.3}
        trials.append(
            create_trial(
                state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                value=None if pruned else value,
                params=params,
                distributions=distributions,
                intermediate_values=curve,
                user_attrs={
                    "encoding": spec["encoding"],
                    "task": spec["task"],
                    "pe_seed": spec["pe_seed"],
                    "seed": 0,
                    "epochs": len(curve),
                    "seconds": 1.0,
                    "ray_trial_id": f"t{number}",
                },
            )
        )
    study.add_trials(trials)


@pytest.fixture
def spec_2d() -> dict:
    return copy.deepcopy(SPEC_2D)


@pytest.fixture
def trial_writer():
    """`trial_writer(study, spec, n, seed=0, pruned_every=0)` adds trials following the search layout."""
    return add_trials


@pytest.fixture
def demo_study() -> optuna.Study:
    """An in-memory study of 60 trials (every 10th pruned) over SPEC_2D."""
    study = optuna.create_study(study_name=SPEC_2D["name"], direction="maximize")
    study.set_user_attr("spec", SPEC_2D)
    study.set_user_attr("warnings", [])
    add_trials(study, SPEC_2D, 60, pruned_every=10)
    return study


TOKEN = "test-token"


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def make_settings(postgres_url, tmp_path):
    """`make_settings(**overrides)`: service settings on the test's fresh Postgres database."""
    from afpe.service.settings import ServiceSettings

    (tmp_path / "data").mkdir(exist_ok=True)

    def make(**overrides):
        values = {
            "storage": postgres_url,
            "api_token": TOKEN,
            "data_dir": tmp_path / "data",
            "work_dir": tmp_path / "work",
            "ray_num_cpus": 2,
        }
        return ServiceSettings(**{**values, **overrides})

    return make


@pytest.fixture
def client(make_settings):
    """A TestClient over the real app (real Postgres; Ray only started when a job is submitted)."""
    from fastapi.testclient import TestClient

    from afpe.service.app import create_app

    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as test_client:
        yield test_client


def tiny_spec(client, name: str, n_trials: int = 3, epochs: int = 1) -> dict:
    """The shipped quickstart made tiny: n_trials trials of `epochs` epochs on 64 volumes."""
    spec = client.get("/api/specs/quickstart").json()
    spec.update(name=name, n_trials=n_trials)
    spec["trainer"].update(epochs=epochs, limit=64)
    spec["task_options"].update(n_train=64, n_val=32)
    spec["data_root"] = None
    return spec


@pytest.fixture
def tiny():
    return tiny_spec
