"""Issue 14 rows 5 and 6 measured on a 20,000-row CSV import (one configuration repeated: the worst case of
`/api/compare`, which reads every repeat; since issue 27 its interval is the status's t-interval, no bootstrap).

- compare: peak memory (tracemalloc peak, numpy included, and the process's peak RSS growth) of one
  `GET /api/compare` naming the study 12 times;
- import: seconds to write the 20,000 trials with Optuna's `add_trials` (before: one transaction per trial)
  and with `add_finished_trials` (after: bulk), then the whole import over HTTP, and how long a create sent
  while that import runs waits for its answer.

    python benchmarks/hardening.py [--rows 20000] [--storage postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import optuna
import uvicorn
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from afpe.search.shipped_specs import spec_path
from afpe.search.spec_loading import load_spec
from afpe.search.storage import open_storage
from afpe.search.testing import postgres_database
from afpe.search.trial_writes import add_finished_trials
from afpe.service.app import create_app
from afpe.service.cluster.topology import free_port
from afpe.service.jobs.backend import JobState, submission_id
from afpe.service.manager.records import StudyState
from afpe.service.settings import ServiceSettings

TOKEN = uuid.uuid4().hex


class AcceptingJobs:
    """Ray's job API as far as a create needs it (no Ray: the create's own cost is measured)."""

    def submit(self, study: str, attempt: int, spec: dict, resume: bool) -> str:
        return submission_id(study, attempt)

    def state(self, job_id: str) -> JobState | None:
        return JobState(StudyState.QUEUED, "")

    def failure_text(self, job_id: str) -> str:
        return ""

    def stop(self, job_id: str) -> StudyState | None:
        return StudyState.CANCELLED

    def close(self) -> None:
        pass


def repeated_csv(rows: int) -> str:
    return "s_xy,s_z,value,seed\n" + "\n".join(f"0.5,2.0,{0.5 + (i % 97) / 1000},{i}" for i in range(rows))


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak(measure: Callable[[], object]) -> tuple[float, float, float]:
    """(seconds, tracemalloc peak MB, peak RSS growth MB) of `measure()`."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = peak_rss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    measure()
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, traced / 1e6, (peak_rss_kib() - before) / 1024


def insert_times(url: str, rows: int) -> tuple[float, float]:
    """Seconds to write `rows` finished trials one transaction each (Optuna) and in bulk."""
    storage = optuna.storages.get_storage(open_storage(url))
    distributions = {"s_xy": FloatDistribution(0.25, 1, log=True), "s_z": FloatDistribution(1, 4, log=True)}
    trials = [
        create_trial(params={"s_xy": 0.5, "s_z": 2.0}, distributions=distributions, value=i / rows, user_attrs={"i": i})
        for i in range(rows)
    ]
    times = []
    for name, write in (("one-by-one", optuna.Study.add_trials), ("bulk", add_finished_trials)):
        study = optuna.create_study(study_name=name, storage=storage)
        started = time.perf_counter()
        write(study, trials)
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def serve(settings: ServiceSettings) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, AcceptingJobs()), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--storage", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--quick", action="store_true", help="200 rows (tests)")
    args = parser.parse_args()
    if args.quick:
        args.rows = 200
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with tempfile.TemporaryDirectory() as folder, postgres_database(args.storage) as url:
        one_by_one, bulk = insert_times(url, args.rows)
        print(f"import write of {args.rows} trials: add_trials {one_by_one:.1f} s, bulk {bulk:.1f} s")
        settings = ServiceSettings(api_token=TOKEN, storage=url, data_dir=folder, work_dir=folder)
        server, base = serve(settings)
        quickstart = load_spec(spec_path("quickstart"), ["name=created-meanwhile"]).model_dump(mode="json")
        waits: list[float] = []

        def create_meanwhile() -> None:
            time.sleep(1.0)
            started = time.perf_counter()
            response = httpx.post(f"{base}/api/studies", json=quickstart, headers=auth, timeout=600)
            assert response.status_code == 201, response.text
            waits.append(time.perf_counter() - started)

        creator = threading.Thread(target=create_meanwhile)
        creator.start()
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", repeated_csv(args.rows), "text/csv")},
            data={"name": "repeated"},
            headers=auth,
            timeout=600,
        )
        assert response.status_code == 201, response.text
        imported = time.perf_counter() - started
        creator.join()
        print(f"import of {args.rows} rows over HTTP: {imported:.1f} s; a create sent 1 s in waited {waits[0]:.2f} s")
        measures = {
            "GET /api/compare, 12 x one name (after)": lambda: httpx.get(
                f"{base}/api/compare", params={"names": ["repeated"] * 12}, timeout=600
            ).raise_for_status(),
        }
        for label, measure in measures.items():
            seconds, traced, rss = peak(measure)
            print(f"{label}: {seconds:.1f} s, traced peak {traced:.0f} MB, peak RSS +{rss:.0f} MB")
        server.should_exit = True


if __name__ == "__main__":
    main()
