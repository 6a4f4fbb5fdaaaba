"""Helpers of the tests and benchmarks: spec pieces, trials written with the layout the search records
(params `s_<axis>`, the standard user attrs, one intermediate value per epoch) without running anything,
and a throw-away PostgreSQL database."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from afpe.search.spec import PARAM_PREFIX, SearchSpace


def rows_cols_axes(low: float, high: float) -> list[dict[str, Any]]:
    """The two searched axes of a 2-D task: `rows` (grid axis 0) and `cols` (grid axis 1) over [low, high]."""
    return [{"name": name, "grid_axes": [axis], "low": low, "high": high} for axis, name in enumerate(("rows", "cols"))]


def tiny_synthetic2d(trainer: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A spec dict of a seconds-long synthetic2d search (64 images, one-block ViT, 3 epochs, one trial at a
    time); `trainer` keys update the trainer settings, other keyword arguments the spec."""
    settings = {"epochs": 3, "batch_size": 32, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1, "heads": 2}}
    spec = {
        "task": "synthetic2d",
        "task_options": {"n_train": 64, "n_val": 32},
        "encoding": "afpe",
        "axes": rows_cols_axes(0.05, 20),
        "trainer": {**settings, **(trainer or {})},
        "resources": {"cpus": 1, "max_concurrent": 1},
    }
    return {**spec, **fields}


@contextmanager
def postgres_database(admin_url: str, prefix: str = "afpe_test") -> Iterator[str]:
    """A fresh, empty database on the server of `admin_url` (a superuser URL), dropped afterwards; yields its
    SQLAlchemy URL."""
    import sqlalchemy

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def peak_at_ratio_one(scales: list[float]) -> float:
    """A known landscape over the first two scales: peaks at log2(s_0 / s_1) = 1."""
    return 1.0 - 0.1 * (math.log2(scales[0] / scales[1]) - 1.0) ** 2


def make_trial(
    spec: dict[str, Any],
    params: dict[str, float],
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    curve: dict[int, float] | None = None,
    number: int = 0,
) -> FrozenTrial:
    """A finished trial of `spec` (a spec dict) at `params` with the user attrs the recorder writes."""
    distributions = {
        PARAM_PREFIX + axis["name"]: FloatDistribution(axis["low"], axis["high"], log=True) for axis in spec["axes"]
    }
    curve = curve if curve is not None else ({1: value} if value is not None else {})
    attrs = {"encoding": spec.get("encoding", "afpe"), "task": spec.get("task"), "pe_seed": spec.get("pe_seed", 0)}
    attrs["seed"] = spec.get("seed", 0)
    attrs |= {"epochs": len(curve), "seconds": 1.0, "ray_trial_id": f"t{number}"}
    return create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        intermediate_values=curve,
        user_attrs=attrs,
    )


def add_trials(
    study: optuna.Study,
    spec: dict[str, Any],
    n: int,
    seed: int = 0,
    pruned_every: int = 0,
    objective: Callable[[list[float]], float] = peak_at_ratio_one,
) -> None:
    """Add `n` trials of `spec` at log-uniform random scales; every `pruned_every`-th is PRUNED after one
    epoch, the others COMPLETE after two with `objective(scales)` plus noise."""
    rng = random.Random(seed)
    space = SearchSpace.from_spec(spec)
    trials = []
    for number in range(n):
        params = {a.param: math.exp(rng.uniform(math.log(a.low), math.log(a.high))) for a in space.axes}
        value = objective(list(params.values())) + rng.gauss(0, 0.01)
        pruned = bool(pruned_every) and number % pruned_every == pruned_every - 1
        curve = {1: value - 0.3} if pruned else {1: value - 0.2, 2: value - 0.05}
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trials.append(make_trial(spec, params, value, state, curve, number))
    study.add_trials(trials)
