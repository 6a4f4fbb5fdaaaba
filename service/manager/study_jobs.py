"""`StudyJobs`: what the parts of a study's lifecycle share: the service table, the Optuna storage, the job
backend, the studies' one-driver leases (`afpe.search.lease`) with this service's holder id, and one lock per
study (`study_lock`) held through a submission, a cancel's verification or a job's refresh (so an attempt is
never submitted twice at once, and a cancel that waits for its driver keeps no other study waiting);
submitting an attempt, and failing the trials an ended job left RUNNING.

Slots: at most `max_running` studies have a job at once (`ServiceSettings.running_cap`). Each job is a driver
process (Ray Tune, the study's storage connection) on the head: a campaign of 20 studies submitted at once on a
2-CPU head would start 20 drivers that starve the trials and the service itself. A study past the cap stays
QUEUED without a job, with a note saying so, and the reconciler submits it when a slot frees, oldest first."""

from __future__ import annotations

import logging
import threading
import uuid

import optuna
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.search.lease import LeaseError, StudyLeases
from afpe.search.trial_writes import fail_stale_trials
from afpe.service.errors import Conflict, NotFound, ServiceUnavailable
from afpe.service.jobs.backend import JobBackend
from afpe.service.manager.records import ACTIVE_STATES, StudyRecord, StudySource, StudyState, get_record, update_record

log = logging.getLogger("afpe.service")


#: the note of a queued study that waits for a slot (replaced when its job is submitted)
WAITING_NOTE = "waiting for a slot"


class StudyJobs:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        backend: JobBackend,
        max_running: int | None = None,
    ):
        """`max_running`: studies with a job at once (None: no bound; see the module docstring)."""
        self.sessions = sessions
        self.max_running = max_running
        self._slots = threading.Lock()  # held from counting the studies with a job to storing the new job id
        self.storage = storage
        self.backend = backend
        self._study_locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()  # the one global lock: guards the dict of study locks
        with sessions() as session:  # the leases live in the service's database, beside its table
            self.leases = StudyLeases(session.get_bind())
        self.holder = f"afpe-serve-{uuid.uuid4().hex[:12]}"  # this service's lease holder id

    def study_lock(self, name: str) -> threading.RLock:
        """The lock of study `name` (reentrant; one per study name, kept for the service's life: a few bytes
        each). What changes one study's record or job holds it; nothing holds two at once."""
        with self._locks_lock:
            return self._study_locks.setdefault(name, threading.RLock())

    def record(self, name: str) -> StudyRecord:
        """The record of study `name`, or for a study `afpe run` made (no record) an unmanaged stand-in that is
        not stored (source `cli`, attempt 0); NotFound when neither exists."""
        try:
            return get_record(self.sessions, name)
        except NotFound:
            study = self.optuna_study(name)
            return StudyRecord(
                name=name, spec=study.user_attrs["spec"], source=StudySource.CLI, state=StudyState.FAILED, attempt=0
            )

    def optuna_study(self, name: str) -> optuna.Study:
        """The afpe study `name` of the storage (one with a stored spec); NotFound otherwise."""
        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
        except KeyError:
            raise NotFound(f"name: no study {name!r}") from None
        if not isinstance(study.user_attrs.get("spec"), dict):
            raise NotFound(f"name: the Optuna study {name!r} was not made by afpe (it has no spec)")
        return study

    def check_not_held(self, name: str) -> None:
        """Conflict naming the driver that holds the study's lease, if one does (e.g. an `afpe run`)."""
        holder = self.leases.holder(name)
        if holder is not None:
            raise Conflict(f"name: study {name!r} is being run by {holder}; wait for it to end or stop it first")

    def submit(self, record: StudyRecord) -> StudyRecord:
        """Submit the record's current attempt (idempotent per attempt id) and store its job id, when a slot is
        free and no older study waits for one; otherwise the study keeps waiting (WAITING_NOTE). A cluster that
        refuses is noted in `error`; the next refresh submits again."""
        with self._slots:
            if (waiting := self._slot_wait(record)) is not None:
                return update_record(self.sessions, record.name, job_id=None, error=None, note=waiting)
            try:
                job_id = self.backend.submit(record.name, record.attempt, record.spec, record.resume)
                error = None
            except Exception as failure:  # noqa: BLE001 - any cluster problem: keep the study queued, retry later
                job_id, error = None, f"job submission failed (retried on the next refresh): {failure}"
            note = None if (record.note or "").startswith(WAITING_NOTE) else record.note
            return update_record(self.sessions, record.name, job_id=job_id, error=error, note=note)

    def _slot_wait(self, record: StudyRecord) -> str | None:
        """Why `record`'s study must wait for a slot (every slot taken, or an older study waits), or None."""
        if self.max_running is None:
            return None
        with self.sessions() as session:
            active = session.scalars(select(StudyRecord).where(StudyRecord.state.in_(ACTIVE_STATES))).all()
        others = [other for other in active if other.name != record.name]
        created = next((mine.created_at for mine in active if mine.name == record.name), None)  # as stored
        running = sum(1 for other in others if other.job_id is not None)
        ahead = sum(1 for other in others if other.job_id is None and created and other.created_at < created)
        if running < self.max_running and not ahead:
            return None
        return (
            f"{WAITING_NOTE}: {running} of {self.max_running} studies run (max_running_studies), "
            f"{ahead} queued before it"
        )

    def submitted(self, record: StudyRecord) -> StudyRecord:
        """`submit`, and the record of the submitted (or waiting) attempt; ServiceUnavailable when the cluster
        refused it (the study stays queued, recorded, and is submitted again on the next refresh)."""
        record = self.submit(record)
        if record.job_id is None and record.error:
            raise ServiceUnavailable(f"study {record.name!r} is recorded and queued, but its {record.error}")
        return record

    def end_running_trials(self, name: str) -> None:
        """Trials left RUNNING or WAITING by a job that ended get the honest state FAIL, while the service holds
        the study's lease; a live driver holding it (an `afpe run`, or a dead one's lease not yet expired) keeps
        them: they are its own, or the next holder fails them."""
        try:
            with self.leases.held(name, self.holder):
                study = optuna.load_study(study_name=name, storage=self.storage)
                fail_stale_trials(study, reason="its study's job ended before the trial finished")
        except LeaseError as refusal:
            log.info("trials of study %s left to the lease holder: %s", name, refusal)
