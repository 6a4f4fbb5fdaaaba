"""Fixtures of the service tests: real Optuna studies written with the search layout (`afpe.search.testing`),
service settings on a fresh PostgreSQL database, and a TestClient over the real app."""

from __future__ import annotations

import copy
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials, make_trial, rows_cols_axes
from afpe.service.jobs.backend import JobState, submission_id
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records

SPEC_2D = {
    "name": "ratio-demo",
    "task": "synthetic",
    "encoding": "afpe",
    "axes": rows_cols_axes(0.1, 4.0),
    "ratio": ["rows", "cols"],
    "direction": "maximize",
    "metric": "auroc",
    "pe_seed": 3,
    "trainer": {"model": {"dim": 32}},
}


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


TOKEN = "test-token-of-at-least-32-characters"


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
            "allowed_hosts": ["testserver"],  # the Host of Starlette's TestClient
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
    """The shipped quickstart made tiny: n_trials trials of `epochs` epochs on 64 volumes, no repeats."""
    spec = client.get("/api/specs/quickstart").json()
    spec.update(name=name, n_trials=n_trials)
    spec["trainer"].update(epochs=epochs, limit=64)
    spec["task_options"].update(n_train=64, n_val=32)
    spec["data_root"] = None
    spec["repeats"] = None
    return spec


@pytest.fixture
def tiny():
    return tiny_spec


def create_and_wait(api, spec: dict, token: str, timeout_s: float = 400) -> dict:
    """POST `spec` as a new study with the bearer `token` (201 asserted) and poll it until it is neither queued nor
    running; its last status."""
    import time

    created = api.post("/api/studies", json=spec, headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + timeout_s
    while (status := api.get(f"/api/studies/{spec['name']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"study still {status['state']}: {status}"
        time.sleep(2)
    return status


@pytest.fixture
def study_over_rest():
    """`study_over_rest(api, spec, token, timeout_s=400) -> status`: a study created over REST, run to its end."""
    return create_and_wait


@pytest.fixture
def serve():
    """`serve(app) -> base URL`: the app on a real uvicorn server on a free loopback port, stopped after the
    test."""
    import threading
    import time

    import uvicorn

    from afpe.service.cluster.topology import free_port

    servers = []

    def start(app) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


TABLE_SPEC = {"name": "table", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc"}
TABLE_ERROR = "RuntimeError: CUDA out of memory in /home/alice/train.py at 10.1.2.3:6379 token=abcdef123456 <b>x</b>"


def write_table_study(url: str) -> None:
    """36 search trials (every 6th PRUNED), 2 FAIL trials with an error and a log, and 2 repeats of trial 0."""
    study = optuna.create_study(study_name="table", storage=open_storage(url), direction="maximize")
    study.set_user_attr("spec", TABLE_SPEC)
    study.set_user_attr("warnings", [])
    add_trials(study, TABLE_SPEC, 36, pruned_every=6)
    for number in (36, 37):
        trial = make_trial(TABLE_SPEC, {"s_rows": 1.0, "s_cols": 0.5}, None, TrialState.FAIL, {1: 0.4}, number)
        trial.user_attrs.update(error=TABLE_ERROR, log=f"/srv/tune/exp/logs/trial-{number:05d}.log")
        study.add_trial(trial)
    for repeat in (1, 2):
        trial = make_trial(TABLE_SPEC, study.trials[0].params, 0.5 + repeat / 100, number=37 + repeat)
        trial.user_attrs.update(repeat_of=0, repeat=repeat, seed=100 + repeat)
        study.add_trial(trial)
    with open_records(url).begin() as session:
        session.add(StudyRecord(name="table", spec=TABLE_SPEC, source=StudySource.IMPORT, state=StudyState.SUCCEEDED))


@pytest.fixture
def store_table_study():
    """`store_table_study(url)`: the study "table" (see `write_table_study`) in the database at `url`."""
    return write_table_study


class FakeRayJobs:
    """Ray's job API as the lifecycle sees it: jobs in a dict that the test moves from state to state."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobState] = {}
        self.submissions: list[tuple[str, bool]] = []
        self.stopped: list[str] = []
        self.failures: dict[str, str] = {}
        self.down = False

    def submit(self, study: str, attempt: int, spec: dict[str, Any], resume: bool) -> str:
        if self.down:
            raise ConnectionError("the cluster does not answer")
        job_id = submission_id(study, attempt)
        self.jobs.setdefault(job_id, JobState(StudyState.QUEUED, ""))
        self.submissions.append((job_id, resume))
        return job_id

    def state(self, job_id: str) -> JobState | None:
        if self.down:
            raise ConnectionError("the cluster does not answer")
        return self.jobs.get(job_id)

    def failure_text(self, job_id: str) -> str:
        return self.failures.get(job_id, "Traceback: CUDA out of memory")

    def stop(self, job_id: str) -> StudyState | None:
        self.stopped.append(job_id)
        self.jobs[job_id] = JobState(StudyState.CANCELLED, "stopped")
        return StudyState.CANCELLED

    def close(self) -> None:
        pass

    def move(self, job_id: str, state: StudyState) -> None:
        self.jobs[job_id] = JobState(state, "")


@pytest.fixture
def jobs() -> FakeRayJobs:
    """A fake of Ray's job API (an external system) to hand to the lifecycle or `create_app(backend=...)`."""
    return FakeRayJobs()


def record_cli_campaign(url: str, body: dict[str, Any], studies: int = 3) -> None:
    """The campaign `body` (a CampaignSpec with `overrides`) as `afpe campaign run` leaves it when stopped after
    `studies` of its studies: recorded in the database at `url`, those studies finished (n_trials each, a known
    landscape; a baseline at 0.5), the others not started."""
    from afpe.search.campaign import expand, validate_campaign
    from afpe.search.campaign_store import CampaignStore
    from afpe.search.storage import claim_study, create_engine
    from afpe.search.testing import peak_at_ratio_one

    campaign = validate_campaign({key: value for key, value in body.items() if key != "overrides"})
    overrides = body.get("overrides", [])
    CampaignStore(create_engine(url)).save(campaign, overrides)
    storage = open_storage(url)
    for member in expand(campaign, overrides)[:studies]:
        study = claim_study(storage, member.spec, resume=False, origin="cli")
        objective = peak_at_ratio_one if member.spec.axes else (lambda scales: 0.5)
        add_trials(study, member.spec.model_dump(mode="json"), member.spec.n_trials, objective=objective)


@pytest.fixture
def cli_campaign():
    """`cli_campaign(url, body, studies=3)`: see `record_cli_campaign`."""
    return record_cli_campaign
