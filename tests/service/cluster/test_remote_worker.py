"""A Ray worker on "another host" joins the service's private head: real `afpe serve --ray-host ADDRESS` (its head
announced at that address, offering no CPUs), and the `ray start` line that `afpe cluster worker-command` prints
run as it is inside a network namespace of its own (its own interface, IP address, loopback and ports, reaching
the head over a veth pair as another machine would over its network; the filesystem is shared), with a custom
resource only it has. A study created over REST runs all its trials on that worker; a worker with a wrong token
is refused. Every process the test starts is stopped by its process group and the namespace removed (root is
needed for it, as CI has: `.ci/run`)."""

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

BIN = Path(sys.executable).parent
STUDY = tiny_synthetic2d(n_trials=2, trainer={"epochs": 1, "limit": 32, "batch_size": 16})
REFUSED = "Authentication token is missing or incorrect"
SLOW_START = "timed out during startup"  # Ray gives a raylet a fixed 30 s to register: a busy host can miss it
START_TRIES = 3


def free_block() -> int:
    """The first port of a block of PORT_BLOCK ports all free on every interface now."""
    for _ in range(50):
        base = random.randrange(20000, 32000 - PORT_BLOCK)
        probes = []
        try:
            for offset in range(PORT_BLOCK):
                probes.append(socket.create_server(("0.0.0.0", base + offset)))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return base
    raise AssertionError("no free block of ports")


def start_on(namespace: str, line: str, log: Path) -> subprocess.Popen:
    """`line` run by bash in the other host's network `namespace` and its own session, with what a shell there has: no
    service settings, no Ray token, AFPE Sweep's venv on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AFPE_", "RAY_"))}
    env.update(PATH=f"{BIN}:/usr/bin:/bin:/usr/sbin:/sbin", RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    with log.open("w") as output:
        return subprocess.Popen(
            ["ip", "netns", "exec", namespace, "/bin/bash", "-c", line],  # `ip netns exec` execs bash
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(process: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the process group of `process` (Ray stops its node), SIGKILL whatever is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        if sig == signal.SIGTERM:
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
    process.wait()


def test_a_worker_of_another_host_joins_with_the_token_and_runs_the_services_trials(
    tmp_path: Path, postgres_url: str, other_host, study_over_rest
) -> None:
    work_dir, block, api_token = tmp_path / "work", free_block(), uuid.uuid4().hex
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
    serve = [afpe, "serve", "--port", str(port), "--ray-host", other_host.head_ip, "--ray-port", str(block)]
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
            assert f"Ray head for workers of other hosts: {other_host.head_ip}:{block}" in serve_log.read_text()
            token_file = work_dir / TOKEN_FILE
            assert {(work_dir / name).stat().st_mode & 0o777 for name in (TOKEN_FILE, JOIN_FILE)} == {0o600}

            # What the user types on the head host; its last line runs on the other host (the token file and
            # Ray folder there are the test's own: the filesystem is shared; the port block is the head's own
            # numbers, as by default).
            printed = subprocess.run(
                [afpe, "cluster", "worker-command", "--work-dir", str(work_dir)]
                + ["--token-file", str(worker_dir / "ray_token"), "--temp-dir", str(worker_dir / "ray")]
                + ["--num-cpus", "2", "--resources", '{"other_host": 1}'],
                env={**env, "AFPE_WORK_DIR": "/nonexistent"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert printed.returncode == 0, printed.stderr
            *notes, command = printed.stdout.strip().splitlines()
            assert all(note.startswith("#") for note in notes) and command.count("ray start") == 1
            assert f"--address={other_host.head_ip}:{block} " in command and str(token_file) in printed.stdout
            listed = "\n".join(notes)
            for expected in (block, block + 3, block + 4, block + 5, block + 6, block + 7, block + 8):
                assert f"#        {expected} " in listed, listed
            assert listed.count(f"{block + 16}-{block + 255}") == 2  # the worker processes' ports, on both hosts

            # the token travels to the worker host (scp in the README), readable by its owner only
            shutil.copy(token_file, worker_dir / "ray_token")
            (worker_dir / "ray_token").chmod(0o600)
            workers.append(start_on(other_host.namespace, command, tmp_path / "worker.log"))
            wrong = worker_dir / "wrong_token"
            wrong.write_text(uuid.uuid4().hex * 2)
            refused = command.replace(str(worker_dir / "ray_token"), str(wrong))
            workers.append(
                start_on(
                    other_host.namespace,
                    refused.replace(str(worker_dir / "ray"), str(worker_dir / "x")),
                    tmp_path / "refused.log",
                )
            )

            dashboard = ClusterState("", "", f"http://127.0.0.1:{block + 1}", "", "", token_file.read_text())
            deadline = time.monotonic() + 300
            tries = 1
            while len(alive := [n for n in ray_state(dashboard, "nodes") if n["state"] == "ALIVE"]) < 2:
                if workers[0].poll() is not None:  # as the README says: on a busy host, run it again
                    log = (tmp_path / "worker.log").read_text()
                    assert SLOW_START in log and tries < START_TRIES, log
                    workers[0], tries = start_on(other_host.namespace, command, tmp_path / "worker.log"), tries + 1
                assert time.monotonic() < deadline, "the worker did not join"
                time.sleep(1)
            [head] = [node for node in alive if node["is_head_node"]]
            [worker] = [node for node in alive if not node["is_head_node"]]
            assert (head["node_ip"], worker["node_ip"]) == (other_host.head_ip, other_host.ip)
            assert worker["resources_total"]["other_host"] == 1 and worker["resources_total"]["CPU"] == 2
            assert "CPU" not in head["resources_total"]

            name = f"remote-{uuid.uuid4().hex[:8]}"
            status = study_over_rest(api, {**STUDY, "name": name}, api_token)
            assert status["state"] == "succeeded", (status["error"], status["trials"])

            # the printed ports are all there is: the worker host listens on no other (loopback aside), and
            # every connection between it and the head goes to a listed port of one side or the other
            nodes = {block + offset for offset in range(3, 9)} | set(range(block + 16, block + PORT_BLOCK))
            head_ports, worker_ports = nodes | {block}, nodes
            sockets = tcp_sockets(other_host.namespace)
            listening = {local for state, local, _ in sockets if state == "LISTEN" and not local[0].startswith("127.")}
            assert {port for _, port in listening} <= worker_ports, listening
            with_head = [(a[1], b[1]) for state, a, b in sockets if state == "ESTAB" and b[0] == other_host.head_ip]
            assert with_head and all(ours in worker_ports or theirs in head_ports for ours, theirs in with_head)

            assert workers[1].wait(120) != 0
            assert REFUSED in (tmp_path / "refused.log").read_text()
            assert len([n for n in ray_state(dashboard, "nodes") if n["state"] == "ALIVE"]) == 2

        trials = optuna.load_study(study_name=name, storage=postgres_url).get_trials()
        assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 2
        assert {trial.user_attrs["ray_node_id"] for trial in trials} == {worker["node_id"]} != {head["node_id"]}
    finally:
        for process in workers:
            stop_group(process)
        stop_gracefully(server)
        shutil.rmtree(worker_dir, ignore_errors=True)
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a graceful shutdown
    assert not (work_dir / JOIN_FILE).exists()
    marks = (f"={block}", f"={block + 3}", str(worker_dir))
    deadline = time.monotonic() + 30
    while (left := processes_with(marks)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left


def tcp_sockets(namespace: str) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
    """(state, (local address, port), (peer address, port)) of every TCP socket in the network namespace."""
    shown = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Htan"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr

    def endpoint(text: str) -> tuple[str, int]:
        address, port = text.rsplit(":", 1)
        return address.strip("[]").removeprefix("::ffff:"), int(port) if port.isdigit() else 0

    return [(row[0], endpoint(row[3]), endpoint(row[4])) for row in map(str.split, shown.stdout.splitlines())]


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def processes_with(marks: tuple[str, ...]) -> list[str]:
    """Command lines of live processes naming one of `marks` (a port of the test's block, its folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and any(mark in command for mark in marks):
            found.append(command[:200])
    return found
