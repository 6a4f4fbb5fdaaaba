"""`JobFollower`: follows each active study's job on the backend, the one place where what the cluster changed
is written (`reconcile`, the background `reconciler.Reconciler`'s tick; `refresh` before a cancel or resume).

A job the cluster still knows is followed; a job the cluster lost (a private head that stopped with the old
service) is resubmitted as the next attempt with `--resume`, and so is a job whose driver stopped on a storage
outage (`afpe run` exit code 2 with `outage.OUTAGE_MARKER`): one rule, at most MAX_ATTEMPTS attempts, the reason
kept in the record's `note`. When a job ends, trials it left RUNNING become FAIL; a job that succeeded without a
finished search trial fails. A cluster that cannot be reached never fails a read: the study keeps its last known
state, marked stale (`is_stale`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import select

from afpe.search.analysis import finished_count, search_trials
from afpe.search.lease import HEARTBEAT_S, LEASE_TTL_S
from afpe.search.outage import OUTAGE_MARKER
from afpe.service.manager.records import ACTIVE_STATES, StudyRecord, StudyState, get_record, update_record, utcnow
from afpe.service.manager.study_jobs import StudyJobs

REFRESH_S = 1.0
MAX_ATTEMPTS = 5
# a revoked driver lets go within a heartbeat; a dead one's lease expires after the TTL
RELEASE_WAIT_S = LEASE_TTL_S + 2 * HEARTBEAT_S
DRIVER_ERROR = "afpe: error: "

log = logging.getLogger("afpe.service")


def driver_error(text: str) -> str:
    """The one line `afpe run` printed as its error (the last line starting with DRIVER_ERROR, without it) in a
    job's failure text (Ray's message and the log's tail); `text` as it is when it has none."""
    lines = [line.strip() for line in text.splitlines()]
    errors = [line.removeprefix(DRIVER_ERROR) for line in lines if line.startswith(DRIVER_ERROR)]
    return errors[-1] if errors else text


class JobFollower:
    def __init__(self, jobs: StudyJobs, refresh_s: float = REFRESH_S):
        """`refresh_s`: a study's job state is pulled at most once per `refresh_s` unless forced."""
        self.jobs = jobs
        self.refresh_s = refresh_s
        self._checked: dict[str, float] = {}
        self._stale: set[str] = set()

    def is_stale(self, name: str) -> bool:
        """True when the last refresh of study `name` could not reach the cluster: its state is the last known."""
        return name in self._stale

    def reconcile(self) -> None:
        """Follow or resubmit every active study the service runs (`refresh` each); the background reconciler's
        tick. A study whose lock is held (a cancel or resume under way, which writes its state) is left to the
        next tick: one study's slow cancel never holds up the others."""
        with self.jobs.sessions() as session:
            active = select(StudyRecord).where(StudyRecord.state.in_(ACTIVE_STATES))
            records = session.scalars(active.order_by(StudyRecord.created_at)).all()  # waiting ones oldest first
        for record in records:
            self.refresh(record, force=True, wait=False)

    def refresh(self, record: StudyRecord, force: bool = False, wait: bool = True) -> StudyRecord:
        """Pull the job state of an active study from the backend (throttled) and store what changed, under the
        study's lock (`StudyJobs.study_lock`); without `wait`, the record as it is when that lock is held."""
        if not record.state.active or not record.managed:
            return record
        now = time.monotonic()
        if not force and now - self._checked.get(record.name, -math.inf) < self.refresh_s:
            return record
        lock = self.jobs.study_lock(record.name)
        if not lock.acquire(blocking=wait):
            return record
        try:
            self._checked[record.name] = now
            return self._pull(get_record(self.jobs.sessions, record.name))
        finally:
            lock.release()

    def _pull(self, record: StudyRecord) -> StudyRecord:
        """`refresh`'s work, in the study's lock."""
        jobs = self.jobs
        if not record.state.active:
            return record
        if record.job_id is None:  # this attempt not submitted yet: waiting for a slot, or refused
            return jobs.submit(record)
        try:
            job = jobs.backend.state(record.job_id)
        except Exception as failure:  # noqa: BLE001 - any cluster problem: serve the last known state
            log.warning(
                "study %s: the cluster could not be reached (%s); serving its last known state", record.name, failure
            )
            self._stale.add(record.name)
            return record
        self._stale.discard(record.name)
        if job is None:
            return self._resubmit(record, f"the cluster lost the job {record.job_id}")
        if job.state == record.state:
            return record
        changes: dict[str, Any] = {"state": job.state}
        if job.state == StudyState.RUNNING:
            changes["started_at"] = record.started_at or utcnow()
        else:
            changes["finished_at"] = utcnow()
            if job.state == StudyState.FAILED:
                text = self._failure_text(record.job_id)
                if OUTAGE_MARKER in text:
                    return self._resubmit(record, f"the job {record.job_id} stopped on a storage outage")
                changes["error"] = driver_error(text)
            elif job.state == StudyState.CANCELLED:
                changes["error"] = "the Ray job was stopped outside the service"
        record = update_record(jobs.sessions, record.name, **changes)
        if not record.state.active:
            jobs.end_running_trials(record.name)
        if record.state == StudyState.SUCCEEDED and (nothing := self._nothing_finished(record.name)):
            record = update_record(jobs.sessions, record.name, state=StudyState.FAILED, error=nothing)
        return record

    def _nothing_finished(self, name: str) -> str | None:
        """The error of a study whose job succeeded while none of its search trials finished (the latest failed
        trial's first line says why); None when one did."""
        study = optuna.load_study(study_name=name, storage=self.jobs.storage)
        trials = search_trials(study.get_trials(deepcopy=False))
        if finished_count(trials):
            return None
        failed = [t for t in trials if t.state == TrialState.FAIL]
        cause = failed[-1].user_attrs.get("error") if failed else None
        first = (
            next((line.strip() for line in cause.splitlines() if line.strip()), "") if isinstance(cause, str) else ""
        )
        why = f"; the latest failure: {first}" if first else ""
        return f"no trial finished ({len(failed)} failed){why}"

    def _failure_text(self, job_id: str) -> str:
        """Why the job failed, from the cluster (a placeholder when the cluster cannot be reached)."""
        try:
            return self.jobs.backend.failure_text(job_id)
        except Exception:  # noqa: BLE001 - any cluster problem: the failure itself is known
            return f"the job {job_id} failed; its log could not be read from the cluster"

    def _resubmit(self, record: StudyRecord, why: str) -> StudyRecord:
        """A job that ended through no fault of the study (`why`: the cluster does not know it, or its driver
        stopped on a storage outage): the next attempt resumes the Optuna study, with `why` in the record's
        `note`; after MAX_ATTEMPTS attempts the study fails."""
        jobs = self.jobs
        if record.attempt >= MAX_ATTEMPTS:
            error = f"{why} (attempt {record.attempt} of {MAX_ATTEMPTS}: no attempt left)"
            return update_record(jobs.sessions, record.name, state=StudyState.FAILED, finished_at=utcnow(), error=error)
        jobs.leases.revoke(record.name, record.job_id)  # its driver may live on (an orphaned head): it ends
        jobs.leases.wait_until_not_held_by(record.name, record.job_id, RELEASE_WAIT_S)
        record = update_record(
            jobs.sessions,
            record.name,
            attempt=record.attempt + 1,
            resume=True,
            state=StudyState.QUEUED,
            job_id=None,
            note=f"attempt {record.attempt + 1} of {MAX_ATTEMPTS} resumes the study: {why}",
        )
        jobs.end_running_trials(record.name)
        return jobs.submit(record)
