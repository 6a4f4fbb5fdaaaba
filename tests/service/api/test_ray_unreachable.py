"""A configured Ray cluster that cannot be reached: a new study is recorded and answered 503 (submitted again by
the reconciler later), and every read still answers. (A dead *private* head is replaced instead:
tests/service/jobs/test_dead_head.py; reads of a followed job marked `stale` while its cluster is down:
tests/service/manager/test_lifecycle.py.)"""

from __future__ import annotations

from fastapi.testclient import TestClient

from afpe.service.app import create_app
from afpe.service.cluster.topology import free_port


def test_a_create_is_recorded_and_answered_503_and_reads_still_answer(make_settings, auth, tiny):
    settings = make_settings(ray_address=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        created = client.post("/api/studies", json=tiny(client, "later"), headers=auth)
        assert created.status_code == 503, created.text
        assert "study 'later' is recorded and queued, but its job submission failed" in created.json()["error"]
        for path in ("/", "/api/studies", "/api/studies/later", "/studies/later", "/api/studies/later/trials"):
            response = client.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        later = client.get("/api/studies/later").json()
        assert later["state"] == "queued" and later["job_id"] is None
        assert [study["name"] for study in client.get("/api/studies").json()] == ["later"]
