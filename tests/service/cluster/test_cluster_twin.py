"""`afpe cluster up` (the no-Docker twin of docker-compose.yml) runs a study submitted over REST across Ray
nodes: real Ray head + worker processes, real `afpe serve`, real PostgreSQL; `afpe cluster down` leaves
no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import optuna
import pytest
from optuna.trial import TrialState

from afpe.search.testing import tiny_synthetic2d
from afpe.service.cluster.topology import free_port, storage_credentials
from afpe.service.cluster.twin import ClusterState, ray_state

AFPE = [str(Path(sys.executable).parent / "afpe")]  # the installed script, by absolute path
BARE_PATH = "/usr/bin:/bin"  # without the venv: every process the twin starts must come from AFPE's interpreter
STUDY = tiny_synthetic2d(n_trials=3, trainer={"epochs": 1, "limit": 32, "batch_size": 16})


def processes() -> dict[int, tuple[int, int, str]]:
    """Every process: pid -> (parent pid, process group, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), command)
    return table


def cluster_processes(state: ClusterState) -> set[int]:
    """The recorded processes, their process groups and descendants, and anything using the cluster's temp dir."""
    table = processes()
    roots = {process.pid for process in state.processes}
    found = {pid for pid, (_, group, command) in table.items() if group in roots or state.ray_temp_dir in command}
    found |= roots & table.keys()
    grew = True
    while grew:
        children = {pid for pid, (parent, _, _) in table.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


@pytest.fixture
def twin(tmp_path: Path, postgres_url: str):
    """A twin with one worker on free ports, private state/Tune/work folders; always stopped afterwards."""
    cluster_dir = tmp_path / "cluster"
    env = {
        **os.environ,
        "PATH": BARE_PATH,
        "AFPE_API_TOKEN": uuid.uuid4().hex,
        "AFPE_TUNE_DIR": str(tmp_path / "tune"),
        "AFPE_WORK_DIR": str(tmp_path / "work"),
        "AFPE_DATA_DIR": str(tmp_path / "data"),
    }
    command = [
        *AFPE,
        "cluster",
        "up",
        "--dir",
        str(cluster_dir),
        "--workers",
        "1",
        "--storage",
        postgres_url,
        "--port",
        str(free_port()),
        "--ray-port",
        str(free_port()),
        "--dashboard-port",
        str(free_port()),
    ]
    try:
        started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        state = ClusterState.load(cluster_dir)
        assert state is not None and state.api_token == env["AFPE_API_TOKEN"]
        yield state, cluster_dir
    finally:
        subprocess.run([*AFPE, "cluster", "down", "--dir", str(cluster_dir)], env=env, timeout=120)


def test_a_study_submitted_over_rest_runs_on_the_worker_node_and_down_stops_everything(
    twin, postgres_url, study_over_rest
) -> None:
    state, cluster_dir = twin
    nodes = ray_state(state, "nodes")
    head = [node["node_id"] for node in nodes if node["is_head_node"]]
    workers = [node["node_id"] for node in nodes if not node["is_head_node"] and node["state"] == "ALIVE"]
    assert len(head) == 1 and len(workers) == 1
    assert "CPU" not in next(node for node in nodes if node["is_head_node"])["resources_total"]

    name = f"twin-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=state.api_url, timeout=30) as api:
        refused = api.post("/api/studies", json={**STUDY, "name": name})
        assert refused.status_code == 401, refused.text
        status = study_over_rest(api, {**STUDY, "name": name}, state.api_token)
    assert status["state"] == "succeeded", (status["error"], status["trials"])
    assert status["trials"]["COMPLETE"] == 3

    trials = optuna.load_study(study_name=name, storage=postgres_url).get_trials()
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 3
    assert all(trial.user_attrs["ray_trial_id"] and trial.user_attrs["epochs"] == 1 for trial in trials)

    # Where Ray ran it: the study's job driver and supervisor on the head, every trial actor on the worker.
    job = next(job for job in ray_state(state, "jobs") if job.get("submission_id") == status["job_id"])
    assert job["driver_node_id"] == head[0]
    trial_actors = [actor for actor in ray_state(state, "actors") if actor["job_id"] == job["job_id"]]
    assert trial_actors, "Tune's trial actors (ImplicitFunc) belong to the study's job"
    assert {actor["node_id"] for actor in trial_actors} == set(workers), trial_actors

    shown = subprocess.run([*AFPE, "cluster", "status", "--dir", str(cluster_dir)], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.count(" ALIVE ") == 2 and state.api_url in shown.stdout, shown
    again = subprocess.run([*AFPE, "cluster", "up", "--dir", str(cluster_dir)], capture_output=True, text=True)
    assert again.returncode == 2 and "already running" in again.stderr and "Traceback" not in again.stderr

    running = cluster_processes(state)
    assert {process.pid for process in state.processes} <= running
    stopped = subprocess.run([*AFPE, "cluster", "down", "--dir", str(cluster_dir)], capture_output=True, text=True)
    assert stopped.returncode == 0 and "head" in stopped.stdout, stopped.stderr
    deadline = time.monotonic() + 30
    while (left := running & processes().keys()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [processes()[pid][2] for pid in left]
    assert not cluster_processes(state), "a process of the cluster outlived `afpe cluster down`"
    assert not Path(state.ray_temp_dir).exists() and ClusterState.load(cluster_dir) is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--storage", "not a url"], "--storage: not a database URL"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_starts_nothing(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = subprocess.run(
        [*AFPE, "cluster", "up", "--dir", str(tmp_path), *arguments], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result
    assert ClusterState.load(tmp_path) is None


def test_status_and_down_without_a_cluster(tmp_path: Path) -> None:
    status = subprocess.run([*AFPE, "cluster", "status", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert status.returncode == 1 and "no cluster" in status.stdout
    down = subprocess.run([*AFPE, "cluster", "down", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert down.returncode == 0 and "no cluster was running" in down.stdout


def test_a_password_in_the_storage_url_travels_as_pgpassword() -> None:
    assert storage_credentials("postgresql+psycopg://afpe:s3cr%40t@db:5432/afpe") == (
        "postgresql+psycopg://afpe@db:5432/afpe",
        "s3cr@t",
    )
    assert storage_credentials("sqlite:////tmp/afpe.db") == ("sqlite:////tmp/afpe.db", None)
