"""Studies as Ray Jobs: `RayJobBackend`, the `JobBackend` of the service, on a configured cluster or on a
private local Ray head started at first use.

The job's entrypoint is the search driver (`afpe run spec.json [--resume]`); the spec travels in the job's
`working_dir`, the storage URL (no password: the cluster's PGPASSWORD / ~/.pgpass supplies it), data
folder and the job id (the driver's lease holder id, which a cancel revokes) in its environment.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ray.job_submission import JobStatus, JobSubmissionClient

from afpe.core.errors import UserError
from afpe.search.kept_models import ARTIFACT_DIR_ENV, artifact_root
from afpe.search.lease import HOLDER_ENV
from afpe.search.ray_token import private_token_file
from afpe.search.spec_loading import DATA_CONFINE_ENV
from afpe.search.storage import public_url, split_password
from afpe.search.study_list import ORIGIN_ENV, Origin
from afpe.service.cluster.ports import block_ports
from afpe.service.cluster.remote_workers import TOKEN_FILE, advertised_ip, head_join, remove_join
from afpe.service.jobs.backend import JobState, submission_id
from afpe.service.jobs.local_head import LocalRayHead, auth_headers
from afpe.service.manager.records import StudyState
from afpe.service.settings import ServiceSettings

JOB_STATES = {
    JobStatus.PENDING: StudyState.QUEUED,
    JobStatus.RUNNING: StudyState.RUNNING,
    JobStatus.SUCCEEDED: StudyState.SUCCEEDED,
    JobStatus.FAILED: StudyState.FAILED,
    JobStatus.STOPPED: StudyState.CANCELLED,
}
LOG_TAIL_LINES = 40
AGENT_WAIT_S = 60.0

log = logging.getLogger("afpe.service")


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
                    runtime_env={"working_dir": str(folder), "env_vars": {**self.env, HOLDER_ENV: job_id}},
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

    def stop(self, job_id: str, timeout_s: float = 60.0) -> StudyState | None:
        """Stop the job and wait until it is no longer running; its final state (None if unknown)."""
        if self.state(job_id) is None:
            return None
        self.client.stop_job(job_id)
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state(job_id)
            if state is None or not state.state.active or time.monotonic() > deadline:
                return state.state if state else None
            time.sleep(0.5)


class RayJobBackend:
    """The service's `JobBackend`: a `JobRunner` created on first use, on `settings.ray_address` (Ray auth
    token from $RAY_AUTH_TOKEN) or on a private local head started here and stopped by `close()`. A private
    head found dead is replaced by a fresh one at the next use: the jobs it ran are unknown to the new head, so
    the next refresh resubmits their studies (`JobFollower._resubmit`); workers of other hosts that joined it
    must be started again."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.head: LocalRayHead | None = None
        self._runner: JobRunner | None = None
        self._lock = threading.Lock()

    def runner(self) -> JobRunner:
        with self._lock:
            if self.head is not None and not self.head.alive():
                log.warning("the private Ray head at %s died; starting a new one", self.head.address)
                remove_join(self.settings.work_dir)
                self.head.stop()
                self.head, self._runner = None, None
            if self._runner is None:
                url, password = split_password(self.settings.storage)
                address, token = self.settings.ray_address, os.environ.get("RAY_AUTH_TOKEN")
                if address is None:
                    self.head = self._private_head({"PGPASSWORD": password} if password else {})
                    address, token = self.head.address, self.head.token
                    log.info("started a private Ray head at %s (temp dir %s)", address, self.head.temp_dir)
                data_dir = str(self.settings.data_dir)  # the job re-checks data_root against it when it starts
                env = {"AFPE_STORAGE": public_url(url), "AFPE_DATA_DIR": data_dir, DATA_CONFINE_ENV: data_dir}
                env[ORIGIN_ENV] = Origin.SERVICE.value  # a study its driver creates records origin `service`
                # the job keeps checkpoints where this service serves them from
                env[ARTIFACT_DIR_ENV] = str(artifact_root(self.settings.storage, self.settings.artifact_dir))
                self._runner = JobRunner(address, self.settings.work_dir, env, token)
            return self._runner

    def _private_head(self, env: dict[str, str]) -> LocalRayHead:
        """A loopback head; with `ray_host` one that other hosts' workers join (`cluster.remote_workers`): it
        announces that address, pins its ports to the block of `ray_port`, keeps the token in the work dir's
        token file and writes the join file there."""
        settings = self.settings
        if settings.ray_host is None:
            return LocalRayHead(settings.ray_num_cpus, env=env)
        token_file = private_token_file(settings.work_dir / TOKEN_FILE)
        node_ip, ports = advertised_ip(settings.ray_host), block_ports(settings.ray_port)
        head = LocalRayHead(
            settings.ray_num_cpus, env=env, token=token_file.read_text().strip(), node_ip=node_ip, ports=ports
        )
        head_join(node_ip, ports, token_file, head.process.pid).save(settings.work_dir)
        return head

    def head_for_workers(self) -> str:
        """Start the private head that other hosts' workers join (settings.ray_host) now; its GCS address.
        UserError when it does not come up (e.g. a port of its block is taken)."""
        try:
            self.runner()
        except RuntimeError as error:
            raise UserError(f"ray_host: the Ray head did not start: {error}") from None
        assert self.head is not None, "ray_host is set only without ray_address"
        return f"{self.head.node_ip}:{self.head.ports['gcs_port']}"

    def submit(self, study: str, attempt: int, spec: dict[str, Any], resume: bool) -> str:
        return self.runner().submit(study, attempt, spec, resume)

    def state(self, job_id: str) -> JobState | None:
        return self.runner().state(job_id)

    def failure_text(self, job_id: str) -> str:
        return self.runner().failure_text(job_id)

    def stop(self, job_id: str) -> StudyState | None:
        return self.runner().stop(job_id)

    def close(self) -> None:
        if self.head is not None:
            remove_join(self.settings.work_dir)
            self.head.stop()
            self.head = None
            self._runner = None
