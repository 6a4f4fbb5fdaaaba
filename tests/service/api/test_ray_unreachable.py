"""Ray unreachable (the service's private head killed) with one active study: every read still answers with the
last known state marked stale, and a new study whose submission fails is recorded and answered 503."""

from __future__ import annotations

import os
import signal
import time

from fastapi.testclient import TestClient

from afpe.service.app import create_app
from afpe.service.manager.job_follower import REFRESH_S


def test_reads_serve_the_last_known_state_marked_stale_and_a_post_answers_503(make_settings, auth, tiny):
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        assert (
            client.post("/api/studies", json=tiny(client, "active", n_trials=40, epochs=3), headers=auth).status_code
            == 201
        )
        head = client.app.state.backend.head
        os.killpg(head.process.pid, signal.SIGKILL)  # the head and every Ray process of its group
        head.process.wait()
        deadline = time.monotonic() + 60  # the service's background reconciler finds the cluster gone
        while not client.get("/api/studies/active").json()["stale"] and time.monotonic() < deadline:
            time.sleep(REFRESH_S)

        for path in ("/", "/api/studies", "/api/studies/active", "/studies/active", "/api/studies/active/trials"):
            response = client.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        status = client.get("/api/studies/active").json()
        assert (
            status["stale"] is True and status["state"] in ("queued", "running") and status["job_id"] == "afpe-active-1"
        )
        assert client.get("/api/studies").json()[0]["stale"] is True
        assert "(stale)" in client.get("/").text
        assert '<p id="stale" class="note stale">The cluster could not be reached' in client.get("/studies/active").text

        created = client.post("/api/studies", json=tiny(client, "later"), headers=auth)
        assert created.status_code == 503, created.text
        assert "study 'later' is recorded and queued, but its job submission failed" in created.json()["error"]
        later = client.get("/api/studies/later")
        assert later.status_code == 200 and later.json()["state"] == "queued"
