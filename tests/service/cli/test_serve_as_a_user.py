"""`afpe serve` as systemd or a container starts it: the installed script by absolute path, a PATH without the
venv. Its private Ray head, and the study job's `afpe run` entrypoint on it, must still be found."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx

from afpe.search.testing import stop_gracefully
from afpe.service.cluster.topology import free_port

STUDY = {
    "task": "synthetic2d",
    "task_options": {"n_train": 64, "n_val": 32},
    "encoding": "afpe",
    "axes": [
        {"name": "rows", "grid_axes": [0], "low": 0.05, "high": 20},
        {"name": "cols", "grid_axes": [1], "low": 0.05, "high": 20},
    ],
    "n_trials": 2,
    "trainer": {"epochs": 1, "limit": 32, "batch_size": 16, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1}},
    "resources": {"cpus": 1, "max_concurrent": 1},
}


def test_serve_by_absolute_path_with_a_bare_path_runs_a_study_and_a_campaign_to_succeeded(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    port = free_port()
    env = {
        **user_env,
        "AFPE_API_TOKEN": token,
        "AFPE_STORAGE": f"sqlite:///{tmp_path / 'service.db'}",
        "AFPE_WORK_DIR": str(tmp_path / "work"),
        "AFPE_DATA_DIR": str(tmp_path / "data"),
        "AFPE_RAY_NUM_CPUS": "2",
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [afpe_executable, "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if api.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "afpe serve did not answer /healthz"
                time.sleep(0.5)
            shipped = api.get("/api/specs").json()
            assert "quickstart" in {spec["name"] for spec in shipped}  # package data, not a checkout's folder
            created = api.post(
                "/api/studies", json={**STUDY, "name": "bare-path"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 400
            while (status := api.get("/api/studies/bare-path").json())["state"] in ("queued", "running"):
                assert time.monotonic() < deadline, f"study still {status['state']}: {status}"
                time.sleep(2)
            assert status["state"] == "succeeded", status["error"]
            assert status["trials"]["COMPLETE"] == 2

            # a campaign over REST (issue 29): its two studies queued and run by the service side by side
            campaign = {"name": "rest", "base": STUDY, "vary": {"encoding": ["afpe", "sincos"]}, "baseline_seeds": 1}
            campaign["overrides"] = ["n_trials=1"]
            created = api.post("/api/campaigns", json=campaign, headers={"Authorization": f"Bearer {token}"})
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 400
            while (table := api.get("/api/campaigns/rest").json())["state"] == "running":
                assert time.monotonic() < deadline, f"campaign still running: {table['studies']}"
                time.sleep(2)
            assert table["state"] == "succeeded", table["studies"]
            afpe, sincos = table["studies"]
            assert (afpe["n"], sincos["n"]) == (1, 2)  # the baseline: its seed and one repeat seed
            assert table["comparisons"][0]["difference"] == afpe["mean"] - sincos["mean"]
    finally:
        stop_gracefully(server)
        log.close()
