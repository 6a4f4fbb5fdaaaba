"""The sweep cluster's "twin": `afpe cluster up` runs the processes of docker-compose.yml (as defined in
`topology.py`) on this machine, adding only the flags that let several Ray nodes share one machine (a private
temp dir, free ports for the per-node agents). Every process is started in its own session, recorded by PID
in `<cluster dir>/cluster.json` and stopped by that PID / process group: never `ray stop`, never a kill by name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from afpe.service.cluster.topology import (
    API_PORT,
    DASHBOARD_PORT,
    DEFAULT_CLUSTER_DIR,
    RAY_PORT,
    api_command,
    api_env,
    child_env,
    executable,
    free_port,
    head_command,
    node_env,
    storage_credentials,
    worker_command,
)

STATE_FILE = "cluster.json"


@dataclass
class Process:
    role: str  # "head", "worker-1", ..., "api"
    pid: int
    started: int  # kernel start time (clock ticks since boot): guards against a recycled PID
    command: list[str]
    log: str


@dataclass
class ClusterState:
    """What `afpe cluster up` started; written to `<cluster dir>/cluster.json` (mode 0600: it holds the tokens)."""

    ray_temp_dir: str
    ray_address: str  # host:port of the head's GCS
    dashboard_url: str
    api_url: str
    api_token: str
    ray_token: str
    processes: list[Process] = field(default_factory=list)

    @classmethod
    def load(cls, cluster_dir: Path) -> ClusterState | None:
        path = Path(cluster_dir).expanduser() / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["processes"] = [Process(**process) for process in data["processes"]]
        return cls(**data)

    def save(self, cluster_dir: Path) -> None:
        path = Path(cluster_dir).expanduser() / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    def alive(self) -> dict[str, bool]:
        return {process.role: _is_running(process) for process in self.processes}


def cluster_up(
    cluster_dir: Path = DEFAULT_CLUSTER_DIR,
    *,
    workers: int = 1,
    storage: str | None = None,
    data_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = API_PORT,
    ray_port: int = RAY_PORT,
    dashboard_port: int = DASHBOARD_PORT,
    worker_cpus: int | None = None,
    timeout: float = 120.0,
) -> ClusterState:
    """Start the head, `workers` worker nodes and the API; return once all nodes are alive and the API listens.

    `storage` defaults to AFPE_STORAGE (unset: the service's default); a password in it moves to PGPASSWORD.
    Tokens come from RAY_AUTH_TOKEN / AFPE_API_TOKEN when set, otherwise fresh random ones. On any failure
    everything started so far is stopped and the error names the log to read.
    """
    cluster_dir = Path(cluster_dir).expanduser()
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    previous = ClusterState.load(cluster_dir)
    if previous is not None:
        if any(previous.alive().values()):
            raise ValueError(f"a cluster is already running from {cluster_dir} (afpe cluster down --dir {cluster_dir})")
        cluster_down(cluster_dir)
    storage = storage or os.environ.get("AFPE_STORAGE")
    storage_url, storage_password = storage_credentials(storage) if storage else (None, None)
    storage_password = storage_password or os.environ.get("PGPASSWORD")
    log_dir = cluster_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    state = ClusterState(
        ray_temp_dir=tempfile.mkdtemp(prefix="afpe-ray-", dir="/tmp"),  # short: Ray's unix sockets live here
        ray_address=f"127.0.0.1:{ray_port}",
        dashboard_url=f"http://127.0.0.1:{dashboard_port}",
        api_url=f"http://{host}:{port}",
        api_token=os.environ.get("AFPE_API_TOKEN") or secrets.token_urlsafe(32),
        ray_token=os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32),
    )
    state.save(cluster_dir)  # from here on `cluster_down` can clean up
    nodes = node_env(state.ray_token, storage_password=storage_password)  # one machine: Tune's default dir is shared
    try:
        head = head_command(port=ray_port, dashboard_host="127.0.0.1", dashboard_port=dashboard_port)
        head += [f"--temp-dir={state.ray_temp_dir}", f"--ray-client-server-port={free_port()}", *_agent_ports()]
        _start(state, cluster_dir, "head", head, nodes)
        _wait_for_nodes(state, 1, timeout)
        for index in range(1, workers + 1):
            # Own temp dir, as each compose container has: nodes sharing one would share a session folder, and a
            # worker's runtime-env agent then deletes the job's working_dir under the driver running on the head.
            worker_temp_dir = Path(state.ray_temp_dir, f"w{index}")
            worker = worker_command(state.ray_address) + [f"--temp-dir={worker_temp_dir}", *_agent_ports()]
            if worker_cpus is not None:
                worker.append(f"--num-cpus={worker_cpus}")
            _start(state, cluster_dir, f"worker-{index}", worker, nodes)
            _wait_for_nodes(state, 1 + index, timeout)  # one at a time: raylets of one IP starting together race
        env = api_env(
            ray_token=state.ray_token,
            ray_address=state.dashboard_url,
            api_token=state.api_token,
            storage=storage_url,
            storage_password=storage_password,
            data_dir=data_dir,
        )
        _start(state, cluster_dir, "api", api_command(host=host, port=port), env)
        _wait_for_port(state, host, port, timeout)
    except BaseException:
        cluster_down(cluster_dir)
        raise
    return state


def cluster_down(cluster_dir: Path = DEFAULT_CLUSTER_DIR, *, grace: float = 30.0) -> list[str]:
    """Stop what `cluster_up` started (API first, then workers, then the head) and remove its temp dir and state.

    SIGTERM to each recorded PID (`ray start --block` then stops its own raylet, GCS and workers), up to `grace`
    seconds to exit, then SIGKILL to whatever is left in its process group. Returns the roles that were running.
    """
    cluster_dir = Path(cluster_dir).expanduser()
    state = ClusterState.load(cluster_dir)
    if state is None:
        return []
    order = sorted(state.processes, key=lambda process: {"api": 0, "head": 2}.get(process.role, 1))
    running = [process for process in order if _is_running(process)]
    for group in (["api"], [p.role for p in order if p.role.startswith("worker-")], ["head"]):
        members = [process for process in running if process.role in group]
        for process in members:
            _signal(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(_is_running(process) for process in members) and time.monotonic() < deadline:
            time.sleep(0.2)
        for process in members:  # the leader is gone or stuck: clear whatever is left in its group
            _signal(-process.pid, signal.SIGKILL)
    shutil.rmtree(state.ray_temp_dir, ignore_errors=True)
    (cluster_dir / STATE_FILE).unlink(missing_ok=True)
    return [process.role for process in running]


def ray_state(state: ClusterState, resource: str = "nodes", timeout: float = 5.0) -> list[dict]:
    """Rows of Ray's state API on the cluster's dashboard: `nodes` (node_id, is_head_node, state,
    resources_total, ...), `actors` (class_name, node_id, job_id, state, ...), `jobs`, `tasks`, ..."""
    request = urllib.request.Request(
        f"{state.dashboard_url}/api/v0/{resource}?limit=10000&detail=true",
        headers={"Authorization": f"Bearer {state.ray_token}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["data"]["result"]["result"]


def _start(state: ClusterState, cluster_dir: Path, role: str, command: list[str], env: dict[str, str]) -> None:
    log = cluster_dir / "logs" / f"{role}.log"
    with open(log, "wb") as output:
        child = subprocess.Popen(
            [executable(command[0]), *command[1:]],
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopped by its PID, untouched by the caller's signals
        )
    state.processes.append(Process(role, child.pid, _start_time(child.pid) or 0, command, str(log)))
    state.save(cluster_dir)


def _agent_ports() -> list[str]:
    """Per-node ports whose Ray defaults are fixed numbers (52365, ...) and would clash between nodes of one machine."""
    return [f"--dashboard-agent-listen-port={free_port()}"]


def _wait_for_nodes(state: ClusterState, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _check_running(state)
        try:
            alive = [node for node in ray_state(state, "nodes") if node["state"] == "ALIVE"]
            if len(alive) >= count:
                return
        except (OSError, KeyError, ValueError):
            pass  # dashboard not up yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} Ray node(s) not alive after {timeout:.0f} s; see {state.processes[-1].log}")
        time.sleep(0.5)


def _wait_for_port(state: ClusterState, host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _check_running(state)
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the API is not listening on {host}:{port} after {timeout:.0f} s; see {state.processes[-1].log}"
                ) from None
            time.sleep(0.5)


def _check_running(state: ClusterState) -> None:
    for process in state.processes:
        if not _is_running(process):
            tail = Path(process.log).read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise RuntimeError(f"{process.role} exited during start-up: {tail[0]} (log: {process.log})")


def _is_running(process: Process) -> bool:
    started = _start_time(process.pid)
    return started is not None and started == process.started and not _is_zombie(process.pid)


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: when the process started; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
