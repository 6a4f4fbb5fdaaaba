"""A cancel that cancels, through the real app on a real private Ray head: a job stopped right after it was
submitted (Ray may report it STOPPED and still start its entrypoint) never runs a trial to completion."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from afpe.search.lease import StudyLeases
from afpe.search.storage import create_engine
from afpe.service.app import create_app

TRIES = 4
LATE_START_S = 40.0  # time for an entrypoint Ray started after the stop to run a one-epoch trial


def test_cancel_right_after_start_lets_no_trial_complete(make_settings, auth, tiny):
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        spec = tiny(client, "quick-cancel", n_trials=2, epochs=1)
        assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        seconds = []
        for attempt in range(1, TRIES + 1):
            if attempt > 1:
                assert client.post("/api/studies/quick-cancel/resume", headers=auth).json()["attempt"] == attempt
            started = time.monotonic()
            cancelled = client.post("/api/studies/quick-cancel/cancel", headers=auth).json()
            seconds.append(round(time.monotonic() - started, 1))
            assert cancelled["state"] == "cancelled" and cancelled["trials"]["RUNNING"] == 0, cancelled
        time.sleep(LATE_START_S)
        runner = client.app.state.backend.runner()
        refused = 0
        for attempt in range(1, TRIES + 1):
            job = f"afpe-quick-cancel-{attempt}"
            assert not runner.state(job).state.active
            refused += "was cancelled by the service and may not run it" in runner.client.get_job_logs(job)
        status = client.get("/api/studies/quick-cancel").json()
        print(f"{TRIES} cancels right after start took {seconds} s; entrypoints started after their stop: {refused}")
        print(f"trials after {LATE_START_S:.0f} s: {status['trials']}")
        assert status["state"] == "cancelled" and status["attempt"] == TRIES
        assert status["trials"]["COMPLETE"] == 0 and status["trials"]["RUNNING"] == 0
        assert StudyLeases(create_engine(settings.storage)).holder("quick-cancel") is None
