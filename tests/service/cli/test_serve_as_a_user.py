"""`afpe serve` as systemd or a container starts it: the installed script by absolute path, a PATH without the
venv. Its private Ray head, and the study job's `afpe run` entrypoint on it, must still be found."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
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


@contextlib.contextmanager
def served(afpe_executable: str, user_env: dict[str, str], tmp_path: Path, token: str) -> Iterator[httpx.Client]:
    """`afpe serve` by absolute path on a free port (SQLite, a private 2-CPU Ray head), answering /healthz: a
    client on it; the server is stopped on exit."""
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
            yield api
    finally:
        stop_gracefully(server)
        log.close()


def test_serve_by_absolute_path_with_a_bare_path_runs_a_study_and_a_campaign_to_succeeded(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    with served(afpe_executable, user_env, tmp_path, token) as api:
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


@pytest.mark.slow
def test_both_shipped_campaigns_posted_at_once_run_to_their_tables_within_the_running_cap(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 29: the shipped campaigns over REST, as a user takes them (GET the spec, POST it with small overrides),
    both at once: 26 studies on a 2-CPU head, at most 2 with a job at a time (the default cap), the service
    answering throughout. About 10 minutes (each study's Tune start-up)."""
    token = uuid.uuid4().hex
    expected = {"anisotropy": (20, 16, 4), "spacing": (6, 0, 6)}  # studies, comparisons, trend points
    with served(afpe_executable, user_env, tmp_path, token) as api:
        for name in expected:
            spec = api.get(f"/api/campaign-specs/{name}")
            assert spec.status_code == 200, spec.text
            body = {**spec.json(), "overrides": TINY_CAMPAIGN_OVERRIDES}
            created = api.post("/api/campaigns", json=body, headers={"Authorization": f"Bearer {token}"})
            assert created.status_code == 201, created.text
        deadline = time.monotonic() + 1500
        tables: dict[str, dict] = {}
        while True:
            tables = {name: api.get(f"/api/campaigns/{name}").json() for name in expected}
            studies = api.get("/api/studies").json()
            running = [study["name"] for study in studies if study["state"] == "running"]
            assert len(running) <= 2, running
            if all(table["state"] != "running" for table in tables.values()):
                break
            assert time.monotonic() < deadline, {name: table["studies"] for name, table in tables.items()}
            time.sleep(3)
    for name, (n_studies, n_comparisons, n_trend) in expected.items():
        table = tables[name]
        assert table["state"] == "succeeded" and len(table["studies"]) == n_studies, table["studies"]
        assert all(row["state"] == "succeeded" and row["mean"] is not None for row in table["studies"])
        assert len(table["comparisons"]) == n_comparisons
        assert all(c["difference"] is not None for c in table["comparisons"])
        assert len(table["trend"]) == n_trend
