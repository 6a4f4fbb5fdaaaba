"""One driver per study, through the real app on a real private Ray head and Postgres: eight parallel resumes
submit one job, and `afpe run --resume` of the study the service runs is refused (exit 2) naming the job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from afpe.search.lease import StudyLeases
from afpe.search.storage import create_engine
from afpe.service.app import create_app


def test_eight_parallel_resumes_run_one_driver_and_afpe_run_is_refused(make_settings, auth, tiny, tmp_path: Path):
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        spec = tiny(client, "contested", n_trials=6, epochs=30)  # still running when the CLI is refused, under load too
        assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        assert client.post("/api/studies/contested/cancel", headers=auth).json()["state"] == "cancelled"
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.post("/api/studies/contested/resume", headers=auth), range(8)))
        codes = sorted(answer.status_code for answer in answers)
        jobs = sorted(job.submission_id for job in client.app.state.backend.runner().client.list_jobs())
        print(f"8 parallel resumes: answers {codes}; Ray jobs {jobs}")
        assert codes == [200] + [409] * 7, [answer.text for answer in answers]
        assert jobs == ["afpe-contested-1", "afpe-contested-2"]

        leases = StudyLeases(create_engine(settings.storage))
        deadline = time.monotonic() + 240
        while (holder := leases.holder("contested")) is None:
            assert time.monotonic() < deadline, client.get("/api/studies/contested").json()
            time.sleep(0.5)
        assert holder.id == "afpe-contested-2"
        before = client.get("/api/studies/contested").json()["trials"]
        spec_path = tmp_path / "contested.yaml"
        spec_path.write_text(yaml.safe_dump(client.get("/api/studies/contested").json()["spec"]))
        cli = subprocess.run(
            [sys.executable, "-m", "afpe.service", "run", str(spec_path), "--storage", settings.storage, "--resume"],
            env={**os.environ, "AFPE_TUNE_DIR": str(tmp_path / "tune")},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert cli.returncode == 2, cli.stdout + cli.stderr
        assert "study 'contested' is being run by afpe-contested-2 (pid" in cli.stderr and "Traceback" not in cli.stderr
        after = client.get("/api/studies/contested").json()
        assert after["trials"]["FAIL"] == before["FAIL"]  # the refused run failed none of the job's trials
        assert after["state"] in ("queued", "running") and leases.holder("contested").id == "afpe-contested-2"
        assert client.post("/api/studies/contested/cancel", headers=auth).json()["state"] == "cancelled"
