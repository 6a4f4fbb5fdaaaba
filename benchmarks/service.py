"""Latency of the service on a 10,000-trial study in PostgreSQL: GET /api/studies/{name} and the ratio plot.

Goals (issue 5): status p95 <= 50 ms, ratio plot p95 <= 300 ms. The study follows the search layout (params
s_<axis>, the contract's user attrs, one intermediate value per epoch); requests go through the real app
(in-process ASGI client). The first request of each kind is reported apart: it reads every trial from the
database once (Optuna's cached storage then re-reads only unfinished and new trials).

    python benchmarks/service.py [--trials 10000] [--repeats 50] [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
import uuid

import optuna
import sqlalchemy
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from afpe.search.catalog import shipped_specs_dir
from afpe.search.spec import load_spec
from afpe.search.testing import make_trial
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records
from afpe.service.settings import ServiceSettings


def build_study(url: str, n_trials: int, epochs: int = 4) -> None:
    """A finished study of `n_trials` trials over the quickstart spec's axes, with `epochs` learning-curve points."""
    spec = load_spec(shipped_specs_dir() / "quickstart.yaml", [f"name=bench{n_trials}", f"n_trials={n_trials}"])
    data = spec.model_dump(mode="json")
    study = optuna.create_study(study_name=spec.name, storage=url, direction=spec.direction)
    study.set_user_attr("spec", data)
    study.set_user_attr("warnings", [])
    rng = random.Random(0)
    trials = []
    for number in range(n_trials):
        params = {a.param: math.exp(rng.uniform(math.log(a.low), math.log(a.high))) for a in spec.axes}
        value = 1.0 + 0.1 * (math.log2(params["s_z"] / params["s_xy"]) - 1) ** 2 + rng.gauss(0, 0.02)
        pruned = number % 5 == 4
        curve = {e: value + 0.2 / e for e in range(1, (2 if pruned else epochs) + 1)}
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trials.append(make_trial(data, params, value, state, curve, number))
    for start in range(0, n_trials, 1000):
        study.add_trials(trials[start : start + 1000])
    with open_records(url).begin() as session:
        session.add(
            StudyRecord(name=spec.name, spec=data, source=StudySource.REST, state=StudyState.SUCCEEDED, job_id="bench")
        )


def timed(client: TestClient, path: str, repeats: int) -> tuple[float, list[float]]:
    """(first request's seconds, the next `repeats` requests' seconds)."""
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples[0], samples[1:]


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", metavar="DATABASE", help="build into (or reuse) this database and keep it")
    args = parser.parse_args()

    database = args.keep or f"afpe_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database})
        if not exists.first():
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
            exists = None
    url = args.admin_url.rsplit("/", 1)[0] + f"/{database}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        name = f"bench{args.trials}"
        if exists is None:
            start = time.perf_counter()
            build_study(url, args.trials)
            print(f"built a {args.trials}-trial study in PostgreSQL in {time.perf_counter() - start:.1f} s")
        work = tempfile.mkdtemp(prefix="afpe-bench-")
        settings = ServiceSettings(
            storage=url, api_token="b" * 32, data_dir=work, work_dir=work, allowed_hosts=["testserver"]
        )
        with TestClient(create_app(settings)) as client:
            goals = {"status": 0.050, "ratio plot": 0.300}
            for label, path in (("status", f"/api/studies/{name}"), ("ratio plot", f"/api/studies/{name}/plots/ratio")):
                first, samples = timed(client, path, args.repeats)
                p50, p95 = percentile(samples, 50), percentile(samples, 95)
                verdict = "meets" if p95 <= goals[label] else "MISSES"
                print(
                    f"{label:<11} first {first * 1000:7.1f} ms | p50 {p50 * 1000:6.1f} ms | p95 {p95 * 1000:6.1f} ms"
                    f" over {args.repeats} requests | goal p95 <= {goals[label] * 1000:.0f} ms: {verdict}"
                )
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
