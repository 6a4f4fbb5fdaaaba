"""Latency and size of the service's reads on studies of 10,000 and 50,000 trials in PostgreSQL: the status,
every plot kind and the trials table (page and JSON), beside Optuna's own `plot_*` on the same study in the
same run.

Goals (issue 13 item 7): every plot and the trials page p95 <= 150 ms at 10,000 trials and <= 300 ms at 50,000,
with bounded payloads; status p95 <= 50 ms (issue 5, at 10,000). The studies follow the search layout (params
s_<axis>, the contract's user attrs, one intermediate value per epoch; every 5th trial PRUNED after 2 epochs,
every 50th FAIL; 8 trials run at a time) and are written in bulk (`trial_writes.add_finished_trials`). Requests go
through the real app (in-process ASGI client) without If-None-Match, so each sends the whole figure (built
once per study version, then kept); the first request of each kind is reported apart (the status's first reads
every trial from the database and fits the smoothed optimum's GP; a plot's first builds its figure). Optuna's
references are timed on `optuna.load_study` of the same study, its trials cached, with `to_json()` as the
payload (`plot_slice` and `plot_contour` are the nearest to the ratio, axes and contour plots;
`plot_param_importances` uses the same PED-ANOVA evaluator).

Measured 2026-11-23 on 2 CPU cores shared with other sessions (load average 4-5 throughout, so every figure
is inflated and noisy), 20 epochs, 20 requests per kind, Optuna 3 calls: p95 in ms (payload in KiB). Before:
commit fee538d (main); after: branch scale at 7d7f428.

                        10,000 trials                        50,000 trials
    kind                before        after       Optuna      before         after       Optuna
    status               257 (2)      22 (2)                  3375 (2)       65 (2)
    plots/ratio          619 (342)    17 (94)     170 (676)   6343 (1703)    39 (95)    1380 (3421)  plot_slice
    plots/axes           369 (600)    14 (156)                4370 (2969)    53 (156)
    plots/contour         89 (318)    22 (91)    5242 (771837) 989 (1529)   42 (91)     not run     plot_contour
    plots/history         97 (376)    18 (99)     972 (423)   1985 (1924)    43 (103)   3659 (2166)
    plots/intermediate   582 (1071)   16 (19)    3189 (4347)  4807 (3347)    27 (20)   20108 (21755)
    plots/similarity     375 (18)     19 (18)                 3242 (18)      24 (18)
    plots/importance    1030 (7)       9 (7)     1710 (7)    12005 (7)       52 (7)    17692 (7)
    plots/timeline       548 (387)    11 (83)    1651 (6002)  2496 (1952)    55 (85)   16298 (30113)
    trials page (HTML)   466 (16)     31 (16)                  748 (16)      18 (16)
    trials JSON (100)    775 (89)      8 (89)                  889 (89)      12 (89)

First requests after: status 35.6 s / 76.8 s (Optuna's cold read of every trial, and the GP fit: 5 s alone on an
idle core at 400 trials, 27 s with BLAS threads on the loaded cores); plots 34-700 ms / 110-1981 ms (importance
the slowest); trials page 222 ms / 1490 ms.

First reads after a restart (issue 30 row 11, `--restart-only`), measured 2026-12-07 on the same 2 shared cores,
20 epochs; seconds (ratio to Optuna's cold read of every trial in the same run). Before: main at ac16756; after:
branch harden30 at b3f9757 (10,000: 9a4734a, one service serving every study before the restarts).

                        10,000 trials                    100,000 trials
                        before         after             before (load 7.6-21)   after (load 2.1)
    reference           9.74 s         10.41 s           291.6 s                145.7 s
    list + / at once    9.8 (1.01)     0.09-0.12 (0.01)  503.4 (1.73)           0.36 (0.002)
    status              9.47 (0.97)    0.04 (0.004)      360.8 (1.24)           0.18 (0.001)
    plots/importance    9.87 (1.01)    0.05 (0.005)      535.6 (1.84)           0.20 (0.001)
    other plots         0.04-0.18      0.01              1.2-10.1               0.09-0.10
    (load)              1.5            2.0

    python benchmarks/service.py [--trials 10000 50000] [--epochs 20] [--repeats 30] [--admin-url ...] [--quick]
        [--restart-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import optuna
import sqlalchemy
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from afpe.search.shipped_specs import shipped_specs_dir
from afpe.search.spec import PARAM_PREFIX
from afpe.search.spec_loading import load_spec
from afpe.search.testing import make_trial
from afpe.search.trial_writes import add_finished_trials
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records
from afpe.service.plots.kinds import list_plot_kinds
from afpe.service.settings import ServiceSettings

STATUS_GOAL_S = 0.050


def build_study(url: str, n_trials: int, epochs: int) -> str:
    """A finished study of `n_trials` trials over the quickstart spec's axes (values best at a ratio of 2 of its
    `ratio` axes, else of its first two); its name. Its spec says `n_trials` as an imported study's does (a spec
    to run caps it at 10,000)."""
    spec = load_spec(shipped_specs_dir() / "quickstart.yaml", [f"name=bench{n_trials}"])
    data = spec.model_dump(mode="json") | {"n_trials": n_trials}
    study = optuna.create_study(study_name=spec.name, storage=url, direction=spec.direction)
    study.set_user_attr("spec", data)
    study.set_user_attr("warnings", [])
    across, along = (f"{PARAM_PREFIX}{name}" for name in spec.ratio or [a.name for a in spec.axes[:2]])
    rng = random.Random(0)
    start = dt.datetime(2026, 1, 1)
    trials = []
    for number in range(n_trials):
        params = {a.param: math.exp(rng.uniform(math.log(a.low), math.log(a.high))) for a in spec.axes}
        value = 1.0 + 0.1 * (math.log2(params[across] / params[along]) - 1) ** 2 + rng.gauss(0, 0.02)
        state = TrialState.FAIL if number % 50 == 49 else TrialState.PRUNED if number % 5 == 4 else TrialState.COMPLETE
        curve = {e: value + 0.2 / e for e in range(1, (epochs if state == TrialState.COMPLETE else 2) + 1)}
        trial = make_trial(data, params, value, state, curve, number)
        trial.datetime_start = start + dt.timedelta(seconds=60 * (number // 8))  # 8 at a time, a minute each
        trial.datetime_complete = trial.datetime_start + dt.timedelta(seconds=rng.uniform(5, 60))
        trials.append(trial)
    add_finished_trials(study, trials)
    with open_records(url).begin() as session:
        session.add(
            StudyRecord(name=spec.name, spec=data, source=StudySource.REST, state=StudyState.SUCCEEDED, job_id="bench")
        )
    return spec.name


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def line(label: str, samples: list[float], size: int, first: float | None = None, goal: float | None = None) -> None:
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    head = f"first {first * 1000:8.1f} ms | " if first is not None else " " * 20
    verdict = "" if goal is None else f" | goal {goal * 1000:.0f} ms: {'meets' if p95 <= goal else 'MISSES'}"
    print(f"  {label:<32} {head}p50 {p50 * 1000:7.1f} ms | p95 {p95 * 1000:7.1f} ms | {size / 1024:8.1f} KiB{verdict}")


def timed_get(client: TestClient, path: str, repeats: int) -> tuple[float, list[float], int]:
    """(first request's seconds, the next `repeats` requests' seconds, the body's bytes)."""
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:300]
    return samples[0], samples[1:], len(response.content)


CONTOUR_MAX_TRIALS = 10_000  # Optuna's plot_contour gave 754 MB of JSON at 10,000 trials: not run beyond


def optuna_references(study: optuna.Study, n_trials: int) -> dict[str, Callable[[], object]]:
    """Optuna's own plot functions on `study`, by name."""
    vis = optuna.visualization
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return {
        "plot_optimization_history": lambda: vis.plot_optimization_history(study),
        "plot_intermediate_values": lambda: vis.plot_intermediate_values(study),
        "plot_param_importances": lambda: vis.plot_param_importances(study, evaluator=evaluator),
        "plot_timeline": lambda: vis.plot_timeline(study),
        "plot_slice": lambda: vis.plot_slice(study),
    } | ({"plot_contour": lambda: vis.plot_contour(study)} if n_trials <= CONTOUR_MAX_TRIALS else {})


def measure(client: TestClient, url: str, name: str, n_trials: int, args: argparse.Namespace) -> None:
    goal = 0.150 if n_trials <= 10_000 else 0.300
    print(f"{n_trials} trials x up to {args.epochs} epochs (goal p95 <= {goal * 1000:.0f} ms):")
    paths = {"status": f"/api/studies/{name}"}
    paths |= {f"plots/{kind}": f"/api/studies/{name}/plots/{kind}" for kind in list_plot_kinds()}
    paths["trials page (HTML)"] = f"/studies/{name}/trials?sort=value&order=desc&page=40"
    paths["trials JSON (100 rows)"] = f"/api/studies/{name}/trials?sort=value&order=desc&limit=100"
    for label, path in paths.items():
        first, samples, size = timed_get(client, path, args.repeats)
        line(label, samples, size, first, STATUS_GOAL_S if label == "status" else goal)
    study = optuna.load_study(study_name=name, storage=url)
    study.trials  # noqa: B018 - Optuna's cache warm, as the service has it
    for label, plot in optuna_references(study, n_trials).items():
        samples, figure = [], None
        for _ in range(args.optuna_repeats):
            start = time.perf_counter()
            figure = plot()
            samples.append(time.perf_counter() - start)
        line(f"Optuna {label}", samples, len(figure.to_json()))
    if n_trials > CONTOUR_MAX_TRIALS:
        print(f"  Optuna plot_contour: not run (754 MB of JSON at {CONTOUR_MAX_TRIALS} trials)")


def serve_once(settings: ServiceSettings, names: list[str]) -> None:
    """A service that serves every study (the list, each status and plot once) and stops: what a service that
    ran before a restart has derived."""
    with TestClient(create_app(settings)) as client:
        client.get("/api/studies")
        for name in names:
            for path in [f"/api/studies/{name}", *(f"/api/studies/{name}/plots/{kind}" for kind in list_plot_kinds())]:
                client.get(path)


def first_reads_after_restart(settings: ServiceSettings, url: str, name: str, n_trials: int) -> None:
    """Issue 30 row 11: after `serve_once`, three times a new service starts beside the studies and is asked
    first (1) `GET /api/studies` and `GET /` at once (every study), (2) the study's status, (3) its plots,
    importance first (the costliest). Each first read is printed with its ratio to the reference measured in
    this run: Optuna's cold read of every trial (`optuna.load_study(...).trials`), what a first read costs when
    nothing derived is kept."""
    goal = 1.0 if n_trials <= 10_000 else 3.0
    kinds = sorted(list_plot_kinds(), key=lambda kind: kind != "importance")
    start = time.perf_counter()
    optuna.load_study(study_name=name, storage=url).trials  # noqa: B018 - the reference: a cold read
    reference = time.perf_counter() - start
    print(f"{n_trials} trials, first reads after a restart (goal <= {goal:.0f} s; load {os.getloadavg()[0]:.1f}):")
    print(f"  reference: Optuna's cold read of every trial {reference:.2f} s")

    def timed(client: TestClient, path: str) -> float:
        began = time.perf_counter()
        response = client.get(path)
        assert response.status_code == 200, response.text[:300]
        return time.perf_counter() - began

    def show(label: str, seconds: float) -> None:
        verdict = "meets" if seconds <= goal else "MISSES"
        print(f"  {label:<34} {seconds:8.2f} s | ratio {seconds / reference:6.3f} | goal: {verdict}")

    with TestClient(create_app(settings)) as client:
        with ThreadPoolExecutor(2) as pool:
            together = {path: pool.submit(timed, client, path) for path in ("/api/studies", "/")}
        for path, seconds in together.items():
            show(f"GET {path} (both at once)", seconds.result())
    with TestClient(create_app(settings)) as client:
        show("status", timed(client, f"/api/studies/{name}"))
    with TestClient(create_app(settings)) as client:
        for kind in kinds:
            show(f"plots/{kind}", timed(client, f"/api/studies/{name}/plots/{kind}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--optuna-repeats", type=int, default=3, help="at least 2")
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--quick", action="store_true", help="200 trials of 2 epochs, 2 requests per kind (tests)")
    parser.add_argument("--restart-only", action="store_true", help="only the first reads after a restart")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.repeats, args.optuna_repeats = [200], 2, 2, 2
    print(f"machine: {os.cpu_count()} CPU cores (shared with other work unless idle), PostgreSQL on {args.admin_url}")
    database = f"afpe_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{database}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        open_records(url)
        names = {}
        for n_trials in args.trials:
            start = time.perf_counter()
            names[n_trials] = build_study(url, n_trials, args.epochs)
            print(f"built {n_trials} trials in PostgreSQL in {time.perf_counter() - start:.1f} s")
        work = tempfile.mkdtemp(prefix="afpe-bench-")
        settings = ServiceSettings(
            storage=url, api_token="b" * 32, data_dir=work, work_dir=work, allowed_hosts=["testserver"]
        )
        if not args.restart_only:
            with TestClient(create_app(settings)) as client:
                for n_trials, name in names.items():
                    measure(client, url, name, n_trials, args)
        serve_once(settings, list(names.values()))
        for n_trials, name in names.items():
            first_reads_after_restart(settings, url, name, n_trials)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
