"""Studies run as real Ray Jobs on the service's private Ray head, followed through the real app on Postgres."""

from __future__ import annotations

import csv
import io
import time

import torch
from fastapi.testclient import TestClient

from afpe.search import load_spec
from afpe.search.shipped_specs import spec_path
from afpe.service.app import create_app

OVERRIDES = "\n".join(
    [
        "name={name}",
        "n_trials={n_trials}",
        "trainer.epochs={epochs}",
        "trainer.limit=64",
        "task_options.n_train=64",
        "task_options.n_val=32",
    ]
)


def wait_for(client, name, states, timeout=240.0, poll=2.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/studies/{name}").json()
        if status["state"] in states:
            return status
        assert time.monotonic() < deadline, f"study stayed {status['state']}: {status}"
        time.sleep(poll)


def test_start_from_form_restart_midway_then_succeed(make_settings, auth):
    settings = make_settings()
    with TestClient(create_app(settings)) as first:
        form = {
            "spec": "quickstart",
            "token": auth["Authorization"].split()[1],
            "overrides": OVERRIDES.format(name="e2e", n_trials=3, epochs=1),
        }
        response = first.post("/studies", data=form, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/studies/e2e"
        running = wait_for(first, "e2e", ("running", "succeeded"), poll=0.5)
        assert running["job_id"] == "afpe-e2e-1"
    # the first service stopped its private head (and the job with it) mid-study; a new one picks it up
    with TestClient(create_app(settings)) as second:
        listed = second.get("/api/studies").json()
        assert [s["name"] for s in listed] == ["e2e"]
        done = wait_for(second, "e2e", ("succeeded", "failed", "cancelled"))
        assert done["state"] == "succeeded", done["error"]
        if running["state"] == "running":
            assert done["attempt"] == 2 and done["job_id"] == "afpe-e2e-2"
        assert done["trials"]["COMPLETE"] >= 3 and done["trials"]["RUNNING"] == 0
        params = {axis.param for axis in load_spec(spec_path("quickstart")).axes}
        assert done["best"]["params"].keys() == params
        for kind in ("ratio", "axes", "contour", "history", "intermediate", "similarity"):
            assert second.get(f"/api/studies/e2e/plots/{kind}").status_code == 200, kind
        rows = list(csv.DictReader(io.StringIO(second.get("/api/studies/e2e/trials?format=csv").text)))
        assert {r["state"] for r in rows} <= {"COMPLETE", "FAIL"} and {*params, "value"} <= rows[0].keys()
        # the quickstart's repeats section ran after the search: its rows are in the CSV, and the answer uses them
        assert sum(r["state"] == "COMPLETE" for r in rows) == done["trials"]["COMPLETE"] + done["repeats"]["done"]
        assert done["repeats"]["done"] > 0 and done["best"]["n"] > 1 and len(done["best"]["ci"]) == 2
        assert second.post("/api/studies/e2e/cancel", headers=auth).status_code == 409
        # the job kept the answer's model where this service serves it from (its AFPE_ARTIFACT_DIR, handed on)
        best = second.get("/api/studies/e2e/best/checkpoint")
        assert best.status_code == 200, best.text
        assert f'filename="e2e-trial-{done["best"]["number"]}.pt"' in best.headers["content-disposition"]
        model = torch.load(io.BytesIO(best.content), weights_only=True)
        assert model["config"]["scales"] is not None and model["metrics"][done["metric"]] == done["best"]["values"][0]


def test_cancel_stops_the_job_and_ends_trials_honestly(make_settings, auth, tiny):
    with TestClient(create_app(make_settings())) as client:
        spec = tiny(client, "to-cancel", n_trials=40, epochs=3)
        assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        deadline = time.monotonic() + 180
        while client.get("/api/studies/to-cancel").json()["trials"]["RUNNING"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert client.post("/api/studies/to-cancel/cancel").status_code == 401
        cancelled = client.post("/api/studies/to-cancel/cancel", headers=auth).json()
        assert cancelled["state"] == "cancelled"
        assert cancelled["trials"]["RUNNING"] == 0 and cancelled["finished"] < 40
        assert client.app.state.backend.state("afpe-to-cancel-1").state == "cancelled"
        time.sleep(3)
        later = client.get("/api/studies/to-cancel").json()
        assert later["state"] == "cancelled" and later["trials"] == cancelled["trials"]
        resumed = client.post("/api/studies/to-cancel/resume", headers=auth).json()
        assert resumed["state"] == "queued" and resumed["attempt"] == 2
        assert client.post("/api/studies/to-cancel/cancel", headers=auth).json()["state"] == "cancelled"
