"""Latency of the trials table, a trial's page and the `importance` and `timeline` plots on a study of N trials
(default 10,000, 20 epochs each) in PostgreSQL, through the real app (in-process ASGI client), beside the
references measured in the same run: Optuna's own read of every trial (`RDBStorage.get_all_trials`, cold, as
a fresh service does), the table's read (`trial_reads.trial_rows`), and Optuna's `plot_param_importances` (same
PED-ANOVA evaluator) and `plot_timeline` on the same study.

    python benchmarks/trials_table.py [--trials 10000] [--epochs 20] [--repeats 30] [--admin-url ...]
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

from afpe.search.storage import open_storage
from afpe.search.testing import make_trial, rows_cols_axes
from afpe.search.trial_reads import trial_rows
from afpe.search.trial_writes import add_finished_trials
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records
from afpe.service.manager.trial_queries import ROW_ATTRS
from afpe.service.settings import ServiceSettings

NAME = "table-bench"


def build_study(url: str, n_trials: int, epochs: int) -> None:
    """`n_trials` trials over two axes (every 5th PRUNED after 2 epochs, every 50th FAIL), `epochs` values each."""
    spec = {"name": NAME, "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc"}
    spec["n_trials"] = n_trials
    study = optuna.create_study(study_name=NAME, storage=url, direction="maximize")
    study.set_user_attr("spec", spec)
    study.set_user_attr("warnings", [])
    rng = random.Random(0)
    trials = []
    for number in range(n_trials):
        params = {p: math.exp(rng.uniform(math.log(0.1), math.log(4.0))) for p in ("s_rows", "s_cols")}
        value = 1.0 - 0.1 * (math.log2(params["s_rows"] / params["s_cols"]) - 1) ** 2 + rng.gauss(0, 0.02)
        state = TrialState.FAIL if number % 50 == 49 else TrialState.PRUNED if number % 5 == 4 else TrialState.COMPLETE
        curve = {e: value - 0.2 / e for e in range(1, (epochs if state == TrialState.COMPLETE else 2) + 1)}
        trials.append(make_trial(spec, params, value, state, curve, number))
    add_finished_trials(study, trials)
    with open_records(url).begin() as session:
        session.add(StudyRecord(name=NAME, spec=spec, source=StudySource.IMPORT, state=StudyState.SUCCEEDED))


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def report(label: str, samples: list[float], first: float | None = None) -> None:
    p50 = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=100, method="inclusive")[94]
    head = f"first {first * 1000:8.1f} ms | " if first is not None else " " * 20
    print(f"{label:<34} {head}p50 {p50 * 1000:7.1f} ms | p95 {p95 * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--quick", action="store_true", help="200 trials of 2 epochs, 2 requests per path (tests)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.repeats = 200, 2, 2
    database = f"afpe_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{database}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        open_records(url)
        built = seconds(lambda: build_study(url, args.trials, args.epochs))
        print(f"built {args.trials} trials x {args.epochs} epochs in {built:.1f} s")
        storage = open_storage(url)
        study_id = storage.get_study_id_from_name(NAME)
        full = seconds(lambda: storage.get_all_trials(study_id, deepcopy=False))
        rows = [seconds(lambda: trial_rows(storage, NAME, ROW_ATTRS)) for _ in range(args.repeats)]
        print(f"{'Optuna get_all_trials (reference)':<34} {full * 1000:8.1f} ms, once")
        report("trial_reads.trial_rows", rows)
        print(f"  -> the table's read takes {statistics.median(rows) / full:.3f} of Optuna's full read")
        work = tempfile.mkdtemp(prefix="afpe-bench-")
        settings = ServiceSettings(
            storage=url, api_token="b" * 32, data_dir=work, work_dir=work, allowed_hosts=["testserver"]
        )
        with TestClient(create_app(settings)) as client:
            paths = {
                "GET /api/.../trials (value desc)": f"/api/studies/{NAME}/trials?sort=value&order=desc&limit=50",
                "GET /studies/.../trials page": f"/studies/{NAME}/trials?sort=s_rows&state=COMPLETE&page=40",
                f"GET /studies/.../trials/{args.trials // 2} page": f"/studies/{NAME}/trials/{args.trials // 2}",
                "GET plots/importance": f"/api/studies/{NAME}/plots/importance",
                "GET plots/timeline": f"/api/studies/{NAME}/plots/timeline",
            }
            for label, path in paths.items():
                samples = []
                for _ in range(args.repeats + 1):
                    start = time.perf_counter()
                    response = client.get(path)
                    samples.append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text
                report(f"{label} ({len(response.content) // 1024} KiB)", samples[1:], samples[0])
        study = optuna.load_study(study_name=NAME, storage=optuna.storages.get_storage(storage))
        study.trials  # noqa: B018 - warm Optuna's cache, as the service's plots have it warm
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        repeats = max(3, args.repeats // 10)
        report(
            "Optuna plot_param_importances",
            [
                seconds(lambda: optuna.visualization.plot_param_importances(study, evaluator=evaluator))
                for _ in range(repeats)
            ],
        )
        report(
            "Optuna plot_timeline", [seconds(lambda: optuna.visualization.plot_timeline(study)) for _ in range(repeats)]
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
