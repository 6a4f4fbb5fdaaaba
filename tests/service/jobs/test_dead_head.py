"""Issue 30 row 4 with a real private Ray head: killed by its PID while the service runs, it is replaced at the
next use, so a new study is submitted (201, not 503 with the dead head's address cached) and a study of the
dead head is resubmitted to the new one."""

from __future__ import annotations

import os
import signal
import time

from fastapi.testclient import TestClient

from afpe.service.app import create_app


def test_a_dead_private_head_is_replaced_and_its_studies_resubmitted(make_settings, auth, tiny):
    with TestClient(create_app(make_settings())) as client:
        first = client.post("/api/studies", json=tiny(client, "before-death", n_trials=2), headers=auth)
        # 503: a fresh head may drop a submission on a loaded machine; the study is queued and retried
        assert first.status_code in (201, 503), first.text
        backend = client.app.state.backend
        dead = backend.head
        os.killpg(dead.process.pid, signal.SIGKILL)  # the head's process group: Ray's processes die with it
        dead.process.wait(30)

        second = client.post("/api/studies", json=tiny(client, "after-death", n_trials=2), headers=auth)
        assert second.status_code == 201, second.text
        assert backend.head is not dead and backend.head.alive()
        assert not os.path.exists(dead.temp_dir)
        assert backend.state(second.json()["job_id"]) is not None  # known to the new head

        deadline = time.monotonic() + 120
        while (status := client.get("/api/studies/before-death").json())["job_id"] in (None, "afpe-before-death-1"):
            assert time.monotonic() < deadline, status
            time.sleep(2)
        assert status["state"] in ("queued", "running", "succeeded"), status
        assert backend.state(status["job_id"]) is not None  # resubmitted to the new head
        if first.status_code == 201:
            assert status["job_id"] == "afpe-before-death-2" and "lost the job afpe-before-death-1" in status["note"]
