"""Issue 30 row 5: a cancel's verification keeps no other study waiting. Through the real app on a real private
Ray head and Postgres: study A's driver is stopped (SIGSTOP: it neither renews nor lets go of its lease), so A's
cancel waits for the lease to lapse; meanwhile study B is read and cancelled, and both answer while A's cancel
is still verifying (with one global lock, B's cancel waited for A's)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from fastapi.testclient import TestClient

from afpe.search.lease import StudyLeases
from afpe.search.storage import create_engine
from afpe.service.app import create_app


def test_cancel_verifying_one_study_keeps_no_other_waiting(make_settings, auth, tiny):
    settings = make_settings()
    leases = StudyLeases(create_engine(settings.storage))
    with TestClient(create_app(settings)) as client:
        for name in ("slow", "other"):
            spec = tiny(client, name, n_trials=2, epochs=50)
            assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        deadline = time.monotonic() + 240
        while (holder := leases.holder("slow")) is None:
            assert time.monotonic() < deadline, client.get("/api/studies/slow").json()
            time.sleep(0.25)
        driver = holder.pid
        assert b"AFPE_LEASE_HOLDER=afpe-slow-1\0" in Path(f"/proc/{driver}/environ").read_bytes()
        os.kill(driver, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(client.post, "/api/studies/slow/cancel", headers=auth)
                while not leases.revoked("slow", "afpe-slow-1"):  # A's cancel has begun its verification
                    assert not slow.done(), slow.result().text
                    time.sleep(0.05)
                began = time.monotonic()
                read = client.get("/api/studies/other")
                other = client.post("/api/studies/other/cancel", headers=auth)
                took = time.monotonic() - began
                verifying = not slow.done()
                cancelled = slow.result()
            print(
                f"B read and cancelled in {took:.1f} s while A's cancel verified; A's cancel still verifying then: "
                f"{verifying}"
            )
            assert read.status_code == 200 and other.json()["state"] == "cancelled", other.text
            assert verifying, "B's cancel waited for A's cancel to end"
            assert cancelled.json()["state"] == "cancelled", cancelled.text
        finally:
            with suppress(ProcessLookupError):  # Ray's stop has killed it; if not, end it
                os.kill(driver, signal.SIGKILL)
