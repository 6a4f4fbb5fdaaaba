"""A Ray worker "on another host" joins the service's private head: real `afpe serve --ray-host 0.0.0.0` (its head
on this host's outward address, offering no CPUs), the `ray start` line that `afpe cluster worker-command` prints
run as it is in a separate shell (its own temp dir, port block, token file and a custom resource only it has), a
study created over REST whose trials therefore all run on that worker, and a worker with a wrong token refused.
Every process the test starts is stopped by its PID / process group."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import optuna
from optuna.trial import TrialState

from afpe.search.testing import stop_gracefully, tiny_synthetic2d
from afpe.service.cluster.ports import PORT_BLOCK
from afpe.service.cluster.remote_workers import JOIN_FILE, TOKEN_FILE
from afpe.service.cluster.topology import free_port
from afpe.service.cluster.twin import ClusterState, ray_state
from afpe.service.settings import is_loopback

BIN = Path(sys.executable).parent
STUDY = tiny_synthetic2d(n_trials=2, trainer={"epochs": 1, "limit": 32, "batch_size": 16})
REFUSED = "Authentication token is missing or incorrect"


def free_block() -> int:
    """The first port of a block of PORT_BLOCK ports all free on every interface now."""
    for _ in range(50):
        base = random.randrange(20000, 32000 - PORT_BLOCK)
        try:
            probes = [socket.create_server(("0.0.0.0", base + offset)) for offset in range(PORT_BLOCK)]
        except OSError:
            continue
        for probe in probes:
            probe.close()
        return base
    raise AssertionError("no free block of ports")


def other_host_env() -> dict[str, str]:
    """What a shell of the other host has: no service settings, no Ray token; AFPE Sweep's venv on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AFPE_", "RAY_"))}
    return {**env, "PATH": f"{BIN}:/usr/bin:/bin", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}


def start_shell(line: str, log: Path) -> subprocess.Popen:
    """`line` run by bash in its own session (stopped through its process group)."""
    with log.open("w") as output:
        return subprocess.Popen(
            ["/bin/bash", "-c", line],
            env=other_host_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(process: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the process group of `process` (Ray stops its node), SIGKILL whatever is left after `grace_s`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace_s)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def test_a_worker_of_another_host_joins_with_the_token_and_runs_the_services_trials(
    tmp_path: Path, postgres_url: str
) -> None:
    work_dir, head_block, worker_block = tmp_path / "work", free_block(), free_block()
    api_token = uuid.uuid4().hex
    env = {
        **os.environ,
        "AFPE_API_TOKEN": api_token,
        "AFPE_STORAGE": postgres_url,
        "AFPE_WORK_DIR": str(work_dir),
        "AFPE_DATA_DIR": str(tmp_path / "data"),
        "AFPE_TUNE_DIR": str(tmp_path / "tune"),
        "AFPE_RAY_NUM_CPUS": "0",  # the head runs no trial
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    }
    port, afpe = free_port(), str(BIN / "afpe")
    serve = [afpe, "serve", "--port", str(port), "--ray-host", "0.0.0.0", "--ray-port", str(head_block)]
    serve_log = tmp_path / "serve.log"
    server = subprocess.Popen(serve, env=env, stdout=serve_log.open("w"), stderr=subprocess.STDOUT)
    worker_dir = Path(tempfile.mkdtemp(prefix="afpe-w-", dir="/tmp"))  # short: Ray's unix sockets live there
    workers: list[subprocess.Popen] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            deadline = time.monotonic() + 180
            while "AFPE Sweep dashboard" not in serve_log.read_text() or not _answers(api):
                assert server.poll() is None and time.monotonic() < deadline, serve_log.read_text()
                time.sleep(0.5)
            token_file = work_dir / TOKEN_FILE
            assert (token_file.stat().st_mode & 0o777) == 0o600 and (
                (work_dir / JOIN_FILE).stat().st_mode & 0o777
            ) == 0o600

            # What the user types on the head host, and its last line on the worker host (here: this host again,
            # in its own folder, port block and token file, with a resource only it has).
            printed = subprocess.run(
                [
                    afpe,
                    "cluster",
                    "worker-command",
                    "--work-dir",
                    str(work_dir),
                    "--token-file",
                    str(worker_dir / "ray_token"),
                    "--temp-dir",
                    str(worker_dir / "ray"),
                    "--port-base",
                    str(worker_block),
                    "--num-cpus",
                    "2",
                    "--resources",
                    '{"other_host": 1}',
                ],
                env={**env, "AFPE_WORK_DIR": "/nonexistent"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert printed.returncode == 0, printed.stderr
            *notes, command = printed.stdout.strip().splitlines()
            assert all(note.startswith("#") for note in notes) and command.count("ray start") == 1
            head_ip = command.split("--address=")[1].split(":")[0]
            assert not is_loopback(head_ip)
            assert f"--address={head_ip}:{head_block} " in command and str(token_file) in printed.stdout
            listed = "\n".join(notes)
            for expected in (head_block, head_block + 3, head_block + 4, worker_block + 3, worker_block + 4):
                assert f"#        {expected} " in listed, listed
            assert (
                f"{head_block + 16}-{head_block + 255}" in listed
                and f"{worker_block + 16}-{worker_block + 255}" in listed
            )

            # the token travels to the worker host (scp in the README), readable by its owner only
            shutil.copy(token_file, worker_dir / "ray_token")
            (worker_dir / "ray_token").chmod(0o600)
            workers.append(start_shell(command, tmp_path / "worker.log"))
            wrong = worker_dir / "wrong_token"
            wrong.write_text(uuid.uuid4().hex * 2)
            refused_line = command.replace(str(worker_dir / "ray_token"), str(wrong)).replace(
                str(worker_dir / "ray"), str(worker_dir / "refused")
            )
            workers.append(start_shell(refused_line, tmp_path / "refused.log"))

            dashboard = ClusterState("", "", f"http://127.0.0.1:{head_block + 1}", "", "", token_file.read_text())
            deadline = time.monotonic() + 180
            while len(alive := [n for n in ray_state(dashboard, "nodes") if n["state"] == "ALIVE"]) < 2:
                assert workers[0].poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker did not join"
                time.sleep(1)
            [head] = [node["node_id"] for node in alive if node["is_head_node"]]
            [worker] = [node for node in alive if not node["is_head_node"]]
            assert worker["resources_total"]["other_host"] == 1 and worker["resources_total"]["CPU"] == 2
            assert worker["node_ip"] == head_ip

            name = f"remote-{uuid.uuid4().hex[:8]}"
            created = api.post(
                "/api/studies", json={**STUDY, "name": name}, headers={"Authorization": f"Bearer {api_token}"}
            )
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 400
            while (status := api.get(f"/api/studies/{name}").json())["state"] in ("queued", "running"):
                assert time.monotonic() < deadline, f"study still {status['state']}: {status}"
                time.sleep(2)
            assert status["state"] == "succeeded", (status["error"], status["trials"])

            assert workers[1].wait(120) != 0
            assert REFUSED in (tmp_path / "refused.log").read_text()
            assert len([n for n in ray_state(dashboard, "nodes") if n["state"] == "ALIVE"]) == 2

        trials = optuna.load_study(study_name=name, storage=postgres_url).get_trials()
        assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 2
        assert {trial.user_attrs["ray_node_id"] for trial in trials} == {worker["node_id"]} != {head}
        assert {trial.user_attrs["host"] for trial in trials} == {socket.gethostname()}
    finally:
        for process in workers:
            stop_group(process)
        stop_gracefully(server)
        shutil.rmtree(worker_dir, ignore_errors=True)
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a graceful shutdown
    assert not (work_dir / JOIN_FILE).exists()
    marks = (f"={head_block}", f"={head_block + 3}", f"={worker_block + 3}", str(worker_dir))
    deadline = time.monotonic() + 30
    while (left := processes_with(marks)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left


def processes_with(marks: tuple[str, ...]) -> list[str]:
    """Command lines of live processes naming one of `marks` (a port of the test's blocks, its folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and any(mark in command for mark in marks):
            found.append(command[:200])
    return found


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
