"""Issue 26, item 1: a study `afpe run` made (origin `cli`, no record in the service) is listed and served as
the service's own are, reads `running` with its holder while a driver holds its lease, and is adopted by a REST
resume; a create of its name gets a 409 naming that REST call. Real Postgres and HTTP; the job API is a fake of
Ray's (an external system)."""

from __future__ import annotations

import re

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from afpe.search.lease import StudyLeases
from afpe.search.spec import StudySpec
from afpe.search.storage import claim_study, create_engine, open_storage
from afpe.search.testing import add_trials, make_trial
from afpe.service.app import create_app
from afpe.service.manager.records import StudyState


@pytest.fixture
def cli_client(make_settings, postgres_url, jobs):
    """A TestClient over the app on a storage holding the study 'cli-run' as `afpe run` leaves it: its spec and
    origin in the Optuna study's user attrs, 4 finished trials of 4, and no service record."""
    with TestClient(create_app(make_settings(), backend=jobs), raise_server_exceptions=False) as client:
        spec = client.get("/api/specs/quickstart").json() | {"name": "cli-run", "n_trials": 4, "data_root": None}
        spec["repeats"] = None
        study = claim_study(open_storage(postgres_url), StudySpec.model_validate(spec), resume=False, origin="cli")
        add_trials(study, spec, 4)
        client.spec = spec
        yield client


def test_a_cli_study_is_listed_and_served_like_a_service_study(cli_client):
    client = cli_client
    [item] = client.get("/api/studies").json()
    assert item["name"] == "cli-run" and item["origin"] == "cli" and item["managed"] is False
    assert item["state"] == "succeeded" and item["finished"] == 4 and item["best_value"] is not None
    status = client.get("/api/studies/cli-run").json()
    assert status["origin"] == "cli" and status["state"] == "succeeded" and status["best"]["ratio_axes"] == ["d1", "d0"]
    assert status["holder"] is None and status["job_id"] is None
    index = client.get("/").text
    assert 'href="/studies/cli-run"' in index and '<td class="origin">cli</td>' in index
    page = re.sub(r"<[^>]+>", "", client.get("/studies/cli-run").text)  # the page's text
    assert f"Best r2 = {status['best']['value']:.4g}" in page and "not run by this service" in page
    for path in (
        "/api/studies/cli-run/trials",
        "/api/studies/cli-run/trials?format=csv",
        "/api/studies/cli-run/trials/0",
        "/studies/cli-run/trials",
        "/studies/cli-run/trials/0",
        "/api/studies/cli-run/plots/ratio",
        "/api/compare?names=cli-run",
        "/compare?names=cli-run",
    ):
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    assert client.get("/api/studies/cli-run/trials").json()["total"] == 4


def test_a_cli_study_a_driver_runs_reads_running_and_is_not_resumed(cli_client, postgres_url, jobs, auth):
    client = cli_client
    leases = StudyLeases(create_engine(postgres_url), ttl_s=300)
    leases.acquire("cli-run", "afpe-run-shell")  # `afpe run cli-run --resume` from a shell
    study = optuna.load_study(study_name="cli-run", storage=open_storage(postgres_url))
    failed = make_trial(client.spec, {"s_d0": 1.0, "s_d1": 1.0}, None, TrialState.FAIL, {}, 4)
    failed.user_attrs["error"] = "DataError: data_root: <b>/srv/data/x</b> is not a directory\nTraceback ..."
    study.add_trial(failed)
    status = client.get("/api/studies/cli-run").json()
    assert status["state"] == "running" and status["holder"].startswith("afpe-run-shell (pid ")
    assert status["trials"]["FAIL"] == 1 and status["latest_error"].startswith("DataError: data_root: <b>.../x</b>")
    page = client.get("/studies/cli-run").text
    assert '<span id="failed" class="failed">FAIL 1</span>' in page
    assert "Latest failed trial: <span>DataError: data_root: &lt;b&gt;.../x&lt;/b&gt; is not a directory" in page
    assert "run by afpe-run-shell (pid " in page
    refused = client.post("/api/studies/cli-run/resume", json={"n_trials": 6}, headers=auth)
    assert refused.status_code == 409 and "is being run by afpe-run-shell" in refused.json()["error"]
    assert client.post("/api/studies/cli-run/cancel", headers=auth).status_code == 409
    assert jobs.submissions == []
    leases.release("cli-run", "afpe-run-shell")
    assert client.get("/api/studies/cli-run").json()["state"] == "succeeded"


def test_a_create_names_the_rest_resume_and_a_resume_adopts_the_cli_study(cli_client, jobs, auth):
    client = cli_client
    taken = client.post("/api/studies", json=client.spec, headers=auth)
    assert taken.status_code == 409 and "POST /api/studies/cli-run/resume" in taken.json()["error"]
    assert "--resume" not in taken.json()["error"]
    done = client.post("/api/studies/cli-run/resume", headers=auth)
    assert done.status_code == 409 and "larger n_trials" in done.json()["error"]

    adopted = client.post("/api/studies/cli-run/resume", json={"n_trials": 6}, headers=auth)
    assert adopted.status_code == 200, adopted.text
    status = adopted.json()
    assert status["managed"] is True and status["origin"] == "cli" and status["source"] == "cli"
    assert status["state"] == "queued" and status["n_trials"] == 6 and status["spec"]["n_trials"] == 6
    assert jobs.submissions == [("afpe-cli-run-1", True)]
    jobs.move("afpe-cli-run-1", StudyState.RUNNING)
    client.app.state.reconciler.tick()
    assert client.get("/api/studies/cli-run").json()["state"] == "running"
    assert [s["name"] for s in client.get("/api/studies").json()] == ["cli-run"]
