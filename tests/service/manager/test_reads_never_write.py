"""Issue 26, item 2: reads never write. With the service's background reconciler stopped, a job the cluster lost
and a job that ended with a trial left RUNNING change nothing however often every page and API read is fetched:
the database is the same row for row and no job is submitted; the reconciler's next tick does the work. Real
Postgres and HTTP; the job API is a fake of Ray's (an external system)."""

from __future__ import annotations

import optuna
import sqlalchemy as sa
from fastapi.testclient import TestClient
from optuna.distributions import FloatDistribution

from afpe.search.storage import create_engine, open_storage
from afpe.service.app import create_app
from afpe.service.manager.job_follower import JobFollower
from afpe.service.manager.reconciler import Reconciler
from afpe.service.manager.records import StudyState, open_records
from afpe.service.manager.study_jobs import StudyJobs

READS = (
    "/",
    "/api/studies",
    "/api/studies/{name}",
    "/studies/{name}",
    "/api/studies/{name}/trials",
    "/api/studies/{name}/trials?format=csv",
    "/studies/{name}/trials",
    "/api/studies/{name}/plots/ratio",
    "/api/studies/{name}/plots/timeline",
)


def database(url: str) -> dict[str, list[tuple]]:
    """Every row of the service's table, the leases and Optuna's trials and their attrs, in a stable order."""
    engine = create_engine(url)
    tables = ("afpe_studies", "afpe_study_leases", "afpe_revoked_holders", "trials", "trial_user_attributes")
    with engine.connect() as connection:
        return {t: sorted(map(tuple, connection.execute(sa.text(f"SELECT * FROM {t}"))), key=repr) for t in tables}


def test_reads_change_nothing_and_the_reconciler_does_the_work(make_settings, postgres_url, jobs, auth):
    with TestClient(create_app(make_settings(), backend=jobs), raise_server_exceptions=False) as client:
        reconciler = client.app.state.reconciler
        for name in ("lost", "ended"):
            spec = client.get("/api/specs/quickstart").json() | {"name": name, "n_trials": 3, "data_root": None}
            assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        assert [(s["origin"], s["managed"]) for s in client.get("/api/studies").json()] == [("service", True)] * 2
        reconciler.stop()  # from here on only reads run, until the test ticks
        study = optuna.load_study(study_name="ended", storage=open_storage(postgres_url))
        study.ask({"s_d0": FloatDistribution(0.1, 3.0, log=True)})  # a trial its job's driver left RUNNING
        jobs.jobs.pop("afpe-lost-1")  # the cluster lost this job
        jobs.move("afpe-ended-1", StudyState.SUCCEEDED)
        before, submitted = database(postgres_url), list(jobs.submissions)

        for _ in range(2):
            for path in READS:
                for name in ("lost", "ended"):
                    response = client.get(path.format(name=name))
                    ok = (200, 409) if "/plots/" in path else (200,)  # a plot of no finished trial: 409 "no data"
                    assert response.status_code in ok, f"{path}: {response.status_code} {response.text[:200]}"
        assert database(postgres_url) == before and jobs.submissions == submitted

        assert reconciler.tick()
        assert jobs.submissions[-1] == ("afpe-lost-2", True)
        assert client.get("/api/studies/lost").json()["attempt"] == 2
        ended = client.get("/api/studies/ended").json()
        assert ended["state"] == "failed" and ended["trials"]["FAIL"] == 1
        assert ended["error"].startswith("no trial finished (1 failed)")
        assert database(postgres_url) != before


def test_one_reconciler_per_database(postgres_url, jobs):
    """Of two services on one database, one reconciles; the other takes over once the first stops."""
    first, second = (
        Reconciler(JobFollower(StudyJobs(open_records(postgres_url), open_storage(postgres_url), jobs)))
        for _ in range(2)
    )
    assert first.tick() and not second.tick() and first.tick()
    first.stop()  # lets go of the database's reconciler lease
    assert second.tick() and not first.tick()
