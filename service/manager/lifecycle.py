"""A study's life as jobs of a `JobBackend`: create, follow, cancel, resume.

State lives in two places of one database: the service table (`records.StudyRecord`: spec, job, state) and
the Optuna study of the same name (trials). Job states are pulled from the backend when a study is read (at
most once per REFRESH_S) and at start-up (`reconcile`), so a restarted service picks up where it left off: a
job the cluster still knows is followed; a job the cluster lost (a private head that stopped with the old
service) is resubmitted as the next attempt with `--resume`. When a job ends, trials it left RUNNING become
FAIL.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import optuna
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.search.storage import StudyConflictError, claim_study, fail_stale_trials
from afpe.service.errors import Conflict
from afpe.service.jobs.backend import JobBackend
from afpe.service.manager.catalog import SpecCatalog
from afpe.service.manager.records import (
    ACTIVE_STATES,
    StudyRecord,
    StudySource,
    StudyState,
    get_record,
    update_record,
    utcnow,
)

REFRESH_S = 1.0
MAX_ATTEMPTS = 5


class StudyLifecycle:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        backend: JobBackend,
        catalog: SpecCatalog,
        refresh_s: float = REFRESH_S,
    ):
        self.sessions = sessions
        self.storage = storage
        self.backend = backend
        self.catalog = catalog
        self.refresh_s = refresh_s
        self._lock = threading.RLock()
        self._checked: dict[str, float] = {}

    def create(self, body: Any) -> tuple[StudyRecord, bool]:
        """(record, created): a new study is queued and submitted; the same spec again returns the study.
        InvalidInput for a bad spec, Conflict for a name another spec owns."""
        spec = self.catalog.validate(body)
        data = spec.model_dump(mode="json")
        with self._lock, self.sessions.begin() as session:
            record = session.get(StudyRecord, spec.name)
            if record is not None:
                if record.spec != data:
                    raise Conflict(f"name: study {spec.name!r} already exists with a different spec")
                return record, False
            try:
                claim_study(self.storage, spec, resume=False)
            except StudyConflictError as error:
                raise Conflict(str(error)) from None
            record = StudyRecord(
                name=spec.name, spec=data, source=StudySource.REST, state=StudyState.QUEUED, attempt=1, resume=False
            )
            session.add(record)
        return self._submit(record), True

    def refresh(self, record: StudyRecord, force: bool = False) -> StudyRecord:
        """Pull the job state of an active study from the backend (throttled) and store what changed."""
        if not record.state.active or record.source != StudySource.REST:
            return record
        now = time.monotonic()
        if not force and now - self._checked.get(record.name, -math.inf) < self.refresh_s:
            return record
        with self._lock:
            self._checked[record.name] = now
            record = get_record(self.sessions, record.name)
            if not record.state.active:
                return record
            job = self.backend.state(record.job_id) if record.job_id else None
            if job is None:
                return self._resubmit_lost(record)
            if job.state == record.state:
                return record
            changes: dict[str, Any] = {"state": job.state}
            if job.state == StudyState.RUNNING:
                changes["started_at"] = record.started_at or utcnow()
            else:
                changes["finished_at"] = utcnow()
                if job.state == StudyState.FAILED:
                    changes["error"] = self.backend.failure_text(record.job_id)
                elif job.state == StudyState.CANCELLED:
                    changes["error"] = "the Ray job was stopped outside the service"
            record = update_record(self.sessions, record.name, **changes)
            if not record.state.active:
                self._end_running_trials(record.name)
            return record

    def reconcile(self) -> None:
        """At start-up: follow or resubmit every active study."""
        with self.sessions() as session:
            records = session.scalars(select(StudyRecord).where(StudyRecord.state.in_(ACTIVE_STATES))).all()
        for record in records:
            self.refresh(record, force=True)

    def cancel(self, name: str) -> StudyRecord:
        """Stop the study's job; its running trials become FAIL. Conflict unless the study is active."""
        record = self.refresh(get_record(self.sessions, name), force=True)
        if record.source != StudySource.REST:
            raise Conflict(f"name: study {name!r} was imported; it has no job to cancel")
        if not record.state.active:
            raise Conflict(f"name: study {name!r} is already {record.state}")
        with self._lock:
            if record.job_id:
                self.backend.stop(record.job_id)
            record = update_record(self.sessions, name, state=StudyState.CANCELLED, finished_at=utcnow(), error=None)
            self._end_running_trials(name)
        return record

    def resume(self, name: str, n_trials: int | None = None) -> StudyRecord:
        """Resubmit a failed or cancelled study (or a succeeded one with a larger n_trials) with --resume.
        Conflict for an imported or active study, or a succeeded one without a new n_trials."""
        record = self.refresh(get_record(self.sessions, name), force=True)
        if record.source != StudySource.REST:
            raise Conflict(f"name: study {name!r} was imported; it cannot run")
        if record.state.active:
            raise Conflict(f"name: study {name!r} is {record.state}; cancel it first")
        spec = dict(record.spec)
        if n_trials is not None:
            spec = self.catalog.validate({**spec, "n_trials": n_trials}).model_dump(mode="json")
        elif record.state == StudyState.SUCCEEDED:
            raise Conflict(f"name: study {name!r} succeeded; give a larger n_trials to run more trials")
        with self._lock:
            record = update_record(
                self.sessions,
                name,
                spec=spec,
                attempt=record.attempt + 1,
                resume=True,
                state=StudyState.QUEUED,
                job_id=None,
                error=None,
                finished_at=None,
            )
            return self._submit(record)

    def _submit(self, record: StudyRecord) -> StudyRecord:
        """Submit the record's current attempt (idempotent per attempt id) and store its job id. A cluster
        that refuses is noted in `error`; the next refresh submits again."""
        try:
            job_id = self.backend.submit(record.name, record.attempt, record.spec, record.resume)
            error = None
        except Exception as failure:  # noqa: BLE001 - any cluster problem: keep the study queued, retry later
            job_id, error = None, f"job submission failed (retried on the next refresh): {failure}"
        return update_record(self.sessions, record.name, job_id=job_id, error=error)

    def _resubmit_lost(self, record: StudyRecord) -> StudyRecord:
        """The cluster does not know the job (never submitted, or the cluster restarted): the next attempt
        resumes the Optuna study; after MAX_ATTEMPTS the study fails."""
        if record.job_id is not None:
            if record.attempt >= MAX_ATTEMPTS:
                error = f"the cluster lost the job {record.job_id} {record.attempt} times"
                return update_record(
                    self.sessions, record.name, state=StudyState.FAILED, finished_at=utcnow(), error=error
                )
            record = update_record(
                self.sessions,
                record.name,
                attempt=record.attempt + 1,
                resume=True,
                state=StudyState.QUEUED,
                job_id=None,
            )
        self._end_running_trials(record.name)
        return self._submit(record)

    def _end_running_trials(self, name: str) -> None:
        """Trials left RUNNING or WAITING by a job that ended get the honest state FAIL."""
        study = optuna.load_study(study_name=name, storage=self.storage)
        fail_stale_trials(study, reason="its study's job ended before the trial finished")
