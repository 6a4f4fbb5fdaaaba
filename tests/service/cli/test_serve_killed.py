"""`kill -9` of `afpe serve` mid-study: its private Ray head and the study's driver end with it (the driver, and
its hold on the study's lease, within the lease's TTL: issue 30 row 9), and a restarted service runs the study on
as attempt 2 with one driver at a time (the lease), to succeeded."""

from __future__ import annotations

import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from afpe.search.lease import LEASE_TTL_S, StudyLeases
from afpe.search.storage import create_engine
from afpe.service.cluster.topology import free_port

STUDY = {
    "name": "orphan",
    "task": "synthetic2d",
    "task_options": {"n_train": 128, "n_val": 32},
    "encoding": "afpe",
    "axes": [
        {"name": "rows", "grid_axes": [0], "low": 0.05, "high": 20},
        {"name": "cols", "grid_axes": [1], "low": 0.05, "high": 20},
    ],
    "n_trials": 3,
    "trainer": {"epochs": 4, "batch_size": 16, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1}},
    "resources": {"cpus": 1, "max_concurrent": 1},
}


def live_pids() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every live process (zombies left out)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    found[int(entry.name)] = (int(fields[1]), int(fields[3]))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return b""


def temp_dir_of(pid: int) -> Path | None:
    """The `--temp-dir=` of a process's command line (a Ray head's), None when it has none or is gone."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return next((Path(a.removeprefix("--temp-dir=")) for a in arguments if a.startswith("--temp-dir=")), None)


def start_serve(afpe: str, env: dict[str, str], log: Path, port: int) -> tuple[subprocess.Popen, httpx.Client]:
    server = subprocess.Popen(
        [afpe, "serve", "--port", str(port)], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT
    )
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, log.read_text()
        try:
            if api.get("/healthz").status_code == 200:
                return server, api
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "afpe serve did not answer /healthz"
        time.sleep(0.5)


def test_kill_9_of_serve_ends_its_head_and_driver_and_a_restart_finishes_the_study(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    env = {
        **user_env,
        "AFPE_API_TOKEN": token,
        "AFPE_STORAGE": f"sqlite:///{tmp_path / 'service.db'}",
        "AFPE_WORK_DIR": str(tmp_path / "work"),
        "AFPE_DATA_DIR": str(tmp_path / "data"),
        "AFPE_RAY_NUM_CPUS": "2",
    }
    log, port = tmp_path / "serve.log", free_port()  # a restart listens where the killed service did
    server, api = start_serve(afpe_executable, env, log, port)
    servers = [server]
    try:
        created = api.post("/api/studies", json=STUDY, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 300
        while (status := api.get("/api/studies/orphan").json())["trials"]["RUNNING"] == 0:
            assert status["state"] in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(1)
        processes = live_pids()
        # the head and its watcher: children of the service that lead their own session
        head_sessions = {pid for pid, (parent, session) in processes.items() if parent == server.pid and session == pid}
        head_processes = {pid for pid, (_, session) in processes.items() if session in head_sessions}
        drivers = {pid for pid in processes if b"AFPE_LEASE_HOLDER=afpe-orphan-1\0" in environ_of(pid)}
        assert head_processes and drivers
        # issue 30 row 10: Ray's world-writable temp dir lies in a folder only the service's user enters
        (ray_dir,) = {path for pid in head_processes if (path := temp_dir_of(pid)) is not None}
        folder = ray_dir.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.name.startswith("afpe-ray-"), folder

        leases = StudyLeases(create_engine(env["AFPE_STORAGE"]))
        holder = leases.holder("orphan")
        assert holder.id == "afpe-orphan-1" and holder.pid in drivers  # the driver; the others run its trials
        server.kill()
        server.wait()
        killed = time.monotonic()
        ended: dict[str, float] = {}  # what ended, seconds after the kill
        while (
            (left := (head_processes | drivers) & live_pids().keys()) or folder.exists() or len(ended) < 2
        ) and time.monotonic() < killed + 90:
            if holder.pid not in left:
                ended.setdefault("driver", time.monotonic() - killed)
            if leases.holder("orphan") is None:
                ended.setdefault("lease", time.monotonic() - killed)
            time.sleep(0.25)
        print(
            f"{len(head_processes)} head processes and {len(drivers)} driver processes; still alive "
            f"{time.monotonic() - killed:.1f} s after the kill: {len(left)}; temp folder left: {folder.exists()}; "
            f"the driver gone and the lease free after {ended} s"
        )
        assert not left and not folder.exists()
        assert ended["driver"] <= LEASE_TTL_S and ended["lease"] <= LEASE_TTL_S, ended

        server, api = start_serve(afpe_executable, env, log, port)
        servers.append(server)
        deadline = time.monotonic() + 500
        while (status := api.get("/api/studies/orphan").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"study still {status['state']}: {status}"
            time.sleep(2)
        assert status["state"] == "succeeded", status["error"]
        assert status["attempt"] == 2 and status["job_id"] == "afpe-orphan-2"
        assert status["trials"]["COMPLETE"] == 3 and status["trials"]["RUNNING"] == 0
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(90)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
