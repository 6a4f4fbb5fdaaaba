"""Studies as Ray Jobs: a private local Ray head when no cluster is given, and the job client either way.

A study attempt is one Ray Job with the deterministic submission id `afpe-<study>-<attempt>`, so a service
that restarts finds its jobs again and never submits an attempt twice. The job's entrypoint is the search
driver (`afpe run spec.json [--resume]`); the spec travels in the job's `working_dir`, the storage URL (no
password: the cluster's PGPASSWORD / ~/.pgpass supplies it) and data folder in its environment.
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
from dataclasses import dataclass
from pathlib import Path

from ray.job_submission import JobStatus, JobSubmissionClient

from afpe.service.processes import child_env, executable

JOB_STATES = {
    JobStatus.PENDING: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "cancelled",
}
LOG_TAIL_LINES = 40
AGENT_WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRayHead:
    """`ray start --head --block` in its own short temp dir and process group, on free loopback ports, with
    Ray's token auth on and a fresh token (`token`); `stop()` ends exactly that process group. The dashboard
    (job API) address is `address`. Jobs inherit the head's environment (token, PGPASSWORD)."""

    def __init__(self, num_cpus: int | None = None, env: dict[str, str] | None = None, timeout_s: float = 90.0):
        self.temp_dir = tempfile.mkdtemp(prefix="afpe-ray-", dir="/tmp")
        self.token = secrets.token_hex(32)
        dashboard_port = _free_port()
        self.address = f"http://127.0.0.1:{dashboard_port}"
        command = [
            executable("ray"), "start", "--head", "--block", "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}", f"--port={_free_port()}", "--node-ip-address=127.0.0.1",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}", f"--metrics-export-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
        ]  # fmt: skip
        if num_cpus:
            command.append(f"--num-cpus={num_cpus}")
        self.log_path = Path(self.temp_dir) / "head.log"
        self.process = subprocess.Popen(
            command,
            env=child_env(
                {**(env or {}), "RAY_TMPDIR": self.temp_dir, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
            ),
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
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

    def stop(self, timeout_s: float = 40.0) -> None:
        """SIGTERM to the head's process group (Ray drains and stops its processes), SIGKILL if it hangs."""
        if self.process.poll() is None:
            group = os.getpgid(self.process.pid)
            os.killpg(group, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def auth_headers(token: str | None) -> dict[str, str] | None:
    """The header of Ray's token auth (None: no token, e.g. a cluster without auth)."""
    return {"Authorization": f"Bearer {token}"} if token else None


@dataclass(frozen=True)
class JobState:
    state: str  # one of records.STATES
    message: str


def submission_id(study: str, attempt: int) -> str:
    return f"afpe-{study}-{attempt}"


class JobRunner:
    """Submit, watch and stop study jobs on the Ray cluster at `address` (the dashboard/job API URL);
    `token` is the cluster's Ray auth token, if it has one."""

    def __init__(self, address: str, work_dir: Path, env: dict[str, str], token: str | None = None):
        self.address = address if "://" in address else f"http://{address}"
        self.client = JobSubmissionClient(self.address, headers=auth_headers(token))
        self.work_dir = work_dir
        self.env = env

    def submit(self, study: str, attempt: int, spec: dict, resume: bool) -> str:
        """Submit attempt `attempt` of `study` (idempotent: an already submitted id is left as it is)."""
        job_id = submission_id(study, attempt)
        if self.state(job_id) is not None:
            return job_id
        folder = self.work_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spec.json").write_text(json.dumps(spec, indent=1))
        entrypoint = "afpe run spec.json" + (" --resume" if resume else "")
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                self.client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=job_id,
                    runtime_env={"working_dir": str(folder), "env_vars": self.env},
                    metadata={"afpe_study": study, "attempt": str(attempt)},
                )
                return job_id
            except RuntimeError as error:  # a fresh head answers before its job agent is up
                if "No available agent" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def state(self, job_id: str) -> JobState | None:
        """The job's state, or None when the cluster does not know the job (e.g. a restarted private head)."""
        try:
            info = self.client.get_job_info(job_id)
        except RuntimeError as error:  # the job API's errors, e.g. "status code 404: Job ... does not exist"
            if "status code 404" in str(error):
                return None
            raise
        return JobState(JOB_STATES[info.status], info.message or "")

    def failure_text(self, job_id: str) -> str:
        """The job's message and the tail of its logs."""
        info = self.client.get_job_info(job_id)
        try:
            tail = "\n".join(self.client.get_job_logs(job_id).splitlines()[-LOG_TAIL_LINES:])
        except RuntimeError:
            tail = ""
        return f"{info.message or info.status}\n{tail}".strip()

    def stop(self, job_id: str, timeout_s: float = 60.0) -> str | None:
        """Stop the job and wait until it is no longer running; its final state (None if unknown)."""
        if self.state(job_id) is None:
            return None
        self.client.stop_job(job_id)
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state(job_id)
            if state is None or state.state not in ("queued", "running") or time.monotonic() > deadline:
                return state.state if state else None
            time.sleep(0.5)
