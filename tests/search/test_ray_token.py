"""Issue 14 row 17: the private Ray of `afpe run` reads a token file only its owner can read (Ray itself
would write ~/.ray/auth_token with the default umask), and every port it opens beyond loopback refuses a client
without that token (Ray 2.60 binds its gRPC servers on every interface and turns 127.0.0.1 into the node's
address: there is no option to bind loopback only, so the token is what keeps the private Ray to its owner)."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from afpe.search.ray_token import TOKEN_ENV, ensure_private_token

START_AND_HOLD_PRIVATE_RAY = """
import json, sys
import ray
from afpe.search.driver import ray_session
with ray_session(None):
    import psutil  # Ray's own copy, importable once Ray is
    assert ray.get(ray.remote(lambda: 42).remote()) == 42
    pids = {child.pid: child.name() for child in psutil.Process().children(recursive=True)}
    listeners = [
        (pids[c.pid], c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    print(json.dumps({"ip": ray.util.get_node_ip_address(), "listeners": listeners}), flush=True)
    sys.stdin.readline()
"""

# One cheap method of each gRPC service a Ray node serves (an empty message is a valid request for each).
RAY_GRPC_METHODS = (
    "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo",
    "/ray.rpc.NodeManagerService/GetNodeStats",
    "/ray.rpc.CoreWorkerService/NumPendingTasks",
    "/ray.rpc.ObjectManagerService/Pull",
    "/ray.rpc.ReporterService/HealthCheck",
    "/ray.rpc.LogService/ListLogs",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_token_file_is_private(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_private_token()
    assert path == home / ".ray" / "auth_token" and len(path.read_text()) == 64
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    token = path.read_text()
    path.chmod(0o644)  # as Ray wrote it before
    assert ensure_private_token() == path and mode(path) == 0o600 and path.read_text() == token
    path.unlink()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-the-environment")
    assert ensure_private_token() is None and not path.exists()


def answer_without_token(host: str, port: int) -> str:
    """How a listener answers a client without Ray's token: 'refused' (HTTP 401 or gRPC UNAUTHENTICATED),
    'metrics' (a Prometheus page), 'OPEN' (a request succeeded) or 'unknown ...'."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        if response.status == 401:
            return "refused"
        prometheus = response.getheader("Content-Type", "").startswith("text/plain; version=")
        return "metrics" if response.status == 200 and prometheus else f"OPEN (HTTP {response.status})"
    except (http.client.HTTPException, ConnectionError):
        pass  # not HTTP/1: a gRPC server
    finally:
        connection.close()
    codes = set()
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for method in RAY_GRPC_METHODS:
            try:
                channel.unary_unary(method)(b"", timeout=5)
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.add(error.code())
    if grpc.StatusCode.OK in codes:
        return "OPEN (gRPC)"
    return "refused" if grpc.StatusCode.UNAUTHENTICATED in codes else f"unknown {sorted(c.name for c in codes)}"


def test_a_private_ray_wants_its_private_token_on_every_port_off_loopback(home: Path) -> None:
    env = {**os.environ, "HOME": str(home)}
    for name in (*TOKEN_ENV, "RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(name, None)
    with subprocess.Popen(
        [sys.executable, "-c", START_AND_HOLD_PRIVATE_RAY],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as ray_owner:
        try:
            lines = (line for line in ray_owner.stdout if line.startswith("{"))
            started = json.loads(next(lines, "null") or "null")
            assert started is not None, "the private Ray did not start"
            answers = {
                f"{name} {bound}:{port}": answer_without_token(
                    started["ip"] if bound in ("0.0.0.0", "::") else bound, port
                )
                for name, bound, port in started["listeners"]
                if not (bound.startswith("127.") or bound == "::1")  # loopback: this machine's users only
            }
        finally:
            ray_owner.stdin.close()
            ray_owner.wait(timeout=120)
    assert ray_owner.returncode == 0
    assert mode(home / ".ray" / "auth_token") == 0o600
    assert any(name.startswith("gcs_server") for name in answers), answers  # Ray still binds beyond loopback
    assert {answer for answer in answers.values()} <= {"refused", "metrics"}, json.dumps(answers, indent=1)
    assert "refused" in answers.values(), answers
