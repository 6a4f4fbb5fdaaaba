"""`afpe serve` as systemd or a container starts it: the installed script by absolute path, a PATH without the
venv. Its private Ray head, and the study job's `afpe run` entrypoint on it, must still be found."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from afpe.search.testing import TINY_CAMPAIGN_OVERRIDES, stop_gracefully
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


@pytest.mark.slow
def test_serve_by_absolute_path_with_a_bare_path_runs_a_study_and_the_shipped_campaigns_to_succeeded(
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

            # the shipped campaigns over REST (issue 29): each read, posted with small overrides, and its studies (20
            # and 6) queued and run by the service side by side
            for name in ("anisotropy", "spacing"):
                campaign = api.get(f"/api/campaign-specs/{name}").json()
                campaign["overrides"] = TINY_CAMPAIGN_OVERRIDES
                created = api.post("/api/campaigns", json=campaign, headers={"Authorization": f"Bearer {token}"})
                assert created.status_code == 201, created.text
            deadline = time.monotonic() + 1500
            for name, studies in (("anisotropy", 20), ("spacing", 6)):
                while (table := api.get(f"/api/campaigns/{name}").json())["state"] == "running":
                    assert time.monotonic() < deadline, f"campaign {name} still running: {table['studies']}"
                    time.sleep(2)
                assert table["state"] == "succeeded", table["studies"]
                assert len(table["studies"]) == studies and all(row["mean"] is not None for row in table["studies"])
                markdown = api.get(f"/api/campaigns/{name}/export", params={"format": "markdown"}).text
                assert all(f"| {row['mean']:.4g} |" in markdown for row in table["studies"])
            assert len(table["comparisons"]) == 0 and {row["property"].split(",")[0] for row in table["studies"]} == {
                'trainer.positions="normalized"',
                'trainer.positions="physical"',
            }
            anisotropy = api.get("/api/campaigns/anisotropy").json()
            assert len(anisotropy["comparisons"]) == 16 and all(
                c["difference"] is not None for c in anisotropy["comparisons"]
            )
    finally:
        stop_gracefully(server)
        log.close()
