"""A private local Ray head for a service started without a cluster address; it dies with the service."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ray.job_submission import JobSubmissionClient

from afpe.search.private_temp import private_ray_dir
from afpe.service.cluster.ports import node_port_flags
from afpe.service.cluster.topology import child_env, executable, free_port, head_command, ray_env

# Ends the head's process group ($2) once the service ($1) is gone, SIGTERM first (Ray drains), SIGKILL after
# 20 s, then removes the head's temp folder ($3); ends by itself when the group is gone while the service
# lives (`stop` removes the folder). The same loop Ray's job supervisor runs beside each driver.
PARENT_WATCH = (
    'while kill -0 "$1" && kill -0 -"$2"; do sleep 1; done 2>/dev/null; kill -0 "$1" 2>/dev/null && exit 0; '
    'kill -TERM -"$2"; for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do '
    'kill -0 -"$2" 2>/dev/null || break; sleep 1; done; kill -KILL -"$2" 2>/dev/null; rm -rf -- "$3"'
)

# The ports of a loopback-only head: free ones, the rest (raylet, object manager, workers) Ray picks.
FREE_PORTS = (
    "gcs_port",
    "dashboard_port",
    "client_server_port",
    "dashboard_agent_listen_port",
    "dashboard_agent_grpc_port",
    "metrics_export_port",
    "runtime_env_agent_port",
)


def auth_headers(token: str | None) -> dict[str, str] | None:
    """The header of Ray's token auth (None: no token, e.g. a cluster without auth)."""
    return {"Authorization": f"Bearer {token}"} if token else None


def _agent_port_flags(ports: dict[str, int]) -> list[str]:
    """`ray start` flags of a loopback head's agent ports (free ones: Ray's defaults are fixed numbers)."""
    return [f"--{name.replace('_', '-')}={ports[name]}" for name in FREE_PORTS[3:]]


class LocalRayHead:
    """The cluster's `head_command` run with `--block` in its own short temp dir (inside a folder only its owner
    enters: `afpe.search.private_temp`, removed by `stop` or after the service's death) and process group, on free
    loopback ports, offering this machine's CPUs (or `num_cpus`; 0: none, trials only on other nodes), with Ray's
    token auth on and `token` (default: a fresh one); `stop()` ends exactly that process group, and so does a
    watcher when this process ends without calling it (a SIGKILL): no orphaned head keeps running its jobs'
    drivers. With `node_ip` and `ports` (`cluster.ports.block_ports`) it is a head other hosts join: it
    announces that address and opens exactly the block's ports. The dashboard (job API) address is `address`,
    on the loopback interface either way. Jobs inherit the head's environment (token, PGPASSWORD).
    RuntimeError when the head does not come up."""

    def __init__(
        self,
        num_cpus: int | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float = 90.0,
        *,
        token: str | None = None,
        node_ip: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
    ):
        self.temp_dir, ray_dir = private_ray_dir()
        self.token = token or secrets.token_hex(32)
        self.node_ip = node_ip
        self.ports = ports or {name: free_port() for name in FREE_PORTS}
        self.address = f"http://127.0.0.1:{self.ports['dashboard_port']}"
        command = head_command(
            port=self.ports["gcs_port"],
            dashboard_host="127.0.0.1",
            dashboard_port=self.ports["dashboard_port"],
            num_cpus=num_cpus,
            num_gpus=None,
        )
        command[0] = executable(command[0])
        command += [
            f"--temp-dir={ray_dir}",
            f"--node-ip-address={node_ip}",
            "--include-dashboard=true",
            f"--ray-client-server-port={self.ports['client_server_port']}",
            *(node_port_flags(self.ports) if ports else _agent_port_flags(self.ports)),
        ]
        self.log_path = Path(self.temp_dir) / "head.log"
        self.process = subprocess.Popen(
            command,
            env=child_env({**(env or {}), "RAY_TMPDIR": ray_dir, **ray_env(self.token)}),
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        subprocess.Popen(
            ["/bin/sh", "-c", PARENT_WATCH, "afpe-head-watch", str(os.getpid()), str(self.process.pid), self.temp_dir],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                log = self.log_path.read_text()[-2000:]
                self.stop()
                raise RuntimeError(f"the local Ray head exited with {self.process.returncode}: {log}")
            try:
                JobSubmissionClient(self.address, headers=auth_headers(self.token))
                return
            except Exception as error:  # noqa: BLE001 - not up yet: any connection error
                if time.monotonic() > deadline:
                    log = self.log_path.read_text()[-2000:]
                    self.stop()
                    raise RuntimeError(
                        f"the local Ray head did not answer at {self.address} in {timeout_s:.0f} s ({error}): {log}"
                    ) from None
                time.sleep(0.5)

    def alive(self) -> bool:
        """Whether the head's process still runs (`ray start --block` ends when one of Ray's processes dies)."""
        return self.process.poll() is None

    def stop(self, timeout_s: float = 40.0) -> None:
        """SIGTERM to the head's process group (Ray drains and stops its processes), SIGKILL if it hangs; the
        group's processes a dead head left are killed. Its temp folder is removed."""
        group = self.process.pid  # the leader of its own session: the group's id
        if self.alive():
            os.killpg(group, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                self.process.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
