"""A study's life as jobs of a `JobBackend`: create, follow, cancel, resume.

State lives in two places of one database: the service table (`records.StudyRecord`: spec, job, state) and
the Optuna study of the same name (trials). Job states are pulled from the backend by `reconcile`, which the
service's one background task (`reconciler.Reconciler`) runs every REFRESH_S (reads never write), and before a
cancel or resume, so a restarted service picks up where it left off: a
job the cluster still knows is followed; a job the cluster lost (a private head that stopped with the old
service) is resubmitted as the next attempt with `--resume`, and so is a job whose driver stopped on a storage
outage (`afpe run` exit code 2 with `outage.OUTAGE_MARKER`): one rule, at most MAX_ATTEMPTS attempts, the
reason kept in the record's `note`. When a job ends, trials it left RUNNING become FAIL, failed by the service
while it holds the study's lease (`afpe.search.lease`: one driver per study).

A cluster that cannot be reached never fails a read: the study keeps its last known state, marked stale
(`is_stale`); a create or resume whose submission fails is recorded (queued, submitted again on the next
refresh) and answered with ServiceUnavailable. A cancel is verified: the job's lease is revoked first (a job
Ray reports stopped may still start its entrypoint, whose driver is then refused), the job is stopped until
Ray reports it ended, and its driver must have let go of the lease before its RUNNING trials become FAIL.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from afpe.search.analysis import finished_count, search_trials
from afpe.search.lease import HEARTBEAT_S, LEASE_TTL_S, LeaseError, StudyLeases
from afpe.search.outage import OUTAGE_MARKER
from afpe.search.storage import StudyConflictError, StudyExistsError, claim_study
from afpe.search.study_list import Origin
from afpe.search.trial_writes import fail_stale_trials
from afpe.service.errors import Conflict, NotFound, ServiceUnavailable
from afpe.service.jobs.backend import JobBackend
from afpe.service.manager.records import (
    ACTIVE_STATES,
    StudyRecord,
    StudySource,
    StudyState,
    compare_and_update,
    get_record,
    update_record,
    utcnow,
)
from afpe.service.manager.spec_admission import SpecAdmission

REFRESH_S = 1.0
MAX_ATTEMPTS = 5
STOP_TRIES = 2
# a revoked driver lets go within a heartbeat; a dead one's lease expires after the TTL
RELEASE_WAIT_S = LEASE_TTL_S + 2 * HEARTBEAT_S

log = logging.getLogger("afpe.service")
DRIVER_ERROR = "afpe: error: "


def driver_error(text: str) -> str:
    """The one line `afpe run` printed as its error (the last line starting with DRIVER_ERROR, without it) in a
    job's failure text (Ray's message and the log's tail); `text` as it is when it has none."""
    lines = [line.strip() for line in text.splitlines()]
    errors = [line.removeprefix(DRIVER_ERROR) for line in lines if line.startswith(DRIVER_ERROR)]
    return errors[-1] if errors else text


class StudyLifecycle:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        backend: JobBackend,
        catalog: SpecAdmission,
        refresh_s: float = REFRESH_S,
    ):
        self.sessions = sessions
        self.storage = storage
        self.backend = backend
        self.catalog = catalog
        self.refresh_s = refresh_s
        self._lock = threading.RLock()
        self._checked: dict[str, float] = {}
        self._stale: set[str] = set()
        with sessions() as session:  # the leases live in the service's database, beside its table
            self.leases = StudyLeases(session.get_bind())
        self.holder = f"afpe-serve-{uuid.uuid4().hex[:12]}"  # this service's lease holder id

    def is_stale(self, name: str) -> bool:
        """True when the last refresh of study `name` could not reach the cluster: its state is the last known."""
        return name in self._stale

    def create(self, body: Any) -> tuple[StudyRecord, bool]:
        """(record, created): a new study is queued and submitted; the same spec again returns the study.
        InvalidInput for a bad spec, Conflict for a name another spec owns or another driver runs,
        ServiceUnavailable when the submission failed (the study is recorded and submitted again later)."""
        spec = self.catalog.validate(body)
        self.catalog.check_data(spec)
        data = spec.model_dump(mode="json")
        with self._lock:  # held through the submission: the reconciler never submits the same attempt at once
            with self.sessions.begin() as session:
                record = session.get(StudyRecord, spec.name)
                if record is not None:
                    if record.spec != data:
                        raise Conflict(f"name: study {spec.name!r} already exists with a different spec")
                    return record, False
                self._check_not_held(spec.name)
                try:
                    claim_study(self.storage, spec, resume=False, origin=Origin.SERVICE)
                except StudyExistsError:
                    raise Conflict(
                        f"name: study {spec.name!r} already has trials (an `afpe run`); continue it with "
                        f'POST /api/studies/{spec.name}/resume (optionally {{"n_trials": N}}), or choose another name'
                    ) from None
                except StudyConflictError as error:
                    raise Conflict(str(error)) from None
                record = StudyRecord(
                    name=spec.name, spec=data, source=StudySource.REST, state=StudyState.QUEUED, attempt=1, resume=False
                )
                session.add(record)
            return self._submitted(self._submit(record)), True

    def refresh(self, record: StudyRecord, force: bool = False) -> StudyRecord:
        """Pull the job state of an active study from the backend (throttled) and store what changed."""
        if not record.state.active or not record.managed:
            return record
        now = time.monotonic()
        if not force and now - self._checked.get(record.name, -math.inf) < self.refresh_s:
            return record
        with self._lock:
            self._checked[record.name] = now
            record = get_record(self.sessions, record.name)
            if not record.state.active:
                return record
            try:
                job = self.backend.state(record.job_id) if record.job_id else None
            except Exception as failure:  # noqa: BLE001 - any cluster problem: serve the last known state
                log.warning(
                    "study %s: the cluster could not be reached (%s); serving its last known state",
                    record.name,
                    failure,
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
            record = update_record(self.sessions, record.name, **changes)
            if not record.state.active:
                self._end_running_trials(record.name)
            if record.state == StudyState.SUCCEEDED and (nothing := self._nothing_finished(record.name)):
                record = update_record(self.sessions, record.name, state=StudyState.FAILED, error=nothing)
            return record

    def reconcile(self) -> None:
        """Follow or resubmit every active study the service runs (`refresh` each); the background reconciler's
        tick."""
        with self.sessions() as session:
            records = session.scalars(select(StudyRecord).where(StudyRecord.state.in_(ACTIVE_STATES))).all()
        for record in records:
            self.refresh(record, force=True)

    def cancel(self, name: str) -> StudyRecord:
        """Stop the study's job and verify it ended (see the module docstring); its running trials become FAIL.
        Conflict unless the study is active. A cluster that cannot be reached does not keep a cancel from
        happening: the revoked driver ends on its own, and the record's `error` says so."""
        record = self.refresh(self._record(name), force=True)
        if not record.managed:
            raise Conflict(f"name: study {name!r} {self._unmanaged(record)}; the service has no job of it to cancel")
        with self._lock:
            record = get_record(self.sessions, name)
            if not record.state.active:
                raise Conflict(f"name: study {name!r} is already {record.state}")
            error = self._stop_verified(name, record.job_id) if record.job_id else None
            record = update_record(self.sessions, name, state=StudyState.CANCELLED, finished_at=utcnow(), error=error)
            self._end_running_trials(name)
        return record

    def resume(self, name: str, n_trials: int | None = None) -> StudyRecord:
        """Resubmit a failed or cancelled study (or a succeeded one with a larger n_trials) with --resume; a study
        `afpe run` made is adopted (`adopt`). Conflict for an imported or active study, one another driver runs, a
        succeeded one without a new n_trials, or a concurrent resume that won; ServiceUnavailable when the
        submission failed (retried later); NotFound when no study has this name."""
        record = self.refresh(self._record(name), force=True)
        if record.source == StudySource.IMPORT:
            raise Conflict(f"name: study {name!r} was imported; it cannot run")
        if not record.managed:
            return self.adopt(name, n_trials)
        with self._lock:
            record = get_record(self.sessions, name)
            if record.state.active:
                raise Conflict(f"name: study {name!r} is {record.state}; cancel it first")
            spec = dict(record.spec)
            if n_trials is not None:
                spec = self.catalog.validate({**spec, "n_trials": n_trials}).model_dump(mode="json")
            elif record.state == StudyState.SUCCEEDED:
                raise Conflict(f"name: study {name!r} succeeded; give a larger n_trials to run more trials")
            self._check_not_held(name)
            resumed = compare_and_update(
                self.sessions,
                name,
                {"attempt": record.attempt, "state": record.state},
                spec=spec,
                attempt=record.attempt + 1,
                resume=True,
                state=StudyState.QUEUED,
                job_id=None,
                error=None,
                note=None,
                finished_at=None,
            )
            if resumed is None:
                raise Conflict(f"name: study {name!r} was resumed or changed by another request meanwhile")
            return self._submitted(self._submit(resumed))

    def adopt(self, name: str, n_trials: int | None = None) -> StudyRecord:
        """Run a study that `afpe run` made (it has no record here) as the service's own from now on: its stored
        spec (with `n_trials` when given) within the service's bounds, recorded as a `cli` study and submitted
        with --resume under the one-driver lease. Conflict naming the holder while a driver runs it, for one
        that finished its n_trials when no larger n_trials is given, or a concurrent adoption that won;
        InvalidInput for a spec outside the service's bounds; NotFound when no afpe study has this name."""
        study = self._optuna_study(name)
        with self._lock:
            self._check_not_held(name)
            changes = {} if n_trials is None else {"n_trials": n_trials}
            spec = self.catalog.validate({**study.user_attrs["spec"], **changes})
            finished = finished_count(search_trials(study.get_trials(deepcopy=False)))
            if n_trials is None and finished >= spec.n_trials:
                raise Conflict(
                    f"name: study {name!r} finished its {spec.n_trials} trials; give a larger n_trials to run more"
                )
            record = StudyRecord(
                name=name,
                spec=spec.model_dump(mode="json"),
                source=StudySource.CLI,
                state=StudyState.QUEUED,
                attempt=1,
                resume=True,
            )
            try:
                with self.sessions.begin() as session:
                    session.add(record)
            except IntegrityError:
                raise Conflict(f"name: study {name!r} was resumed by another request meanwhile") from None
            return self._submitted(self._submit(record))  # in the lock, as `create`'s

    def _record(self, name: str) -> StudyRecord:
        """The record of study `name`, or for a study `afpe run` made (no record) an unmanaged stand-in that is
        not stored (source `cli`, attempt 0); NotFound when neither exists."""
        try:
            return get_record(self.sessions, name)
        except NotFound:
            study = self._optuna_study(name)
            return StudyRecord(
                name=name, spec=study.user_attrs["spec"], source=StudySource.CLI, state=StudyState.FAILED, attempt=0
            )

    def _optuna_study(self, name: str) -> optuna.Study:
        """The afpe study `name` of the storage (one with a stored spec); NotFound otherwise."""
        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
        except KeyError:
            raise NotFound(f"name: no study {name!r}") from None
        if not isinstance(study.user_attrs.get("spec"), dict):
            raise NotFound(f"name: the Optuna study {name!r} was not made by afpe (it has no spec)")
        return study

    def _unmanaged(self, record: StudyRecord) -> str:
        """Why the service runs no job of `record`'s study, for a Conflict."""
        if record.source == StudySource.IMPORT:
            return "was imported"
        holder = self.leases.holder(record.name)
        return f"is run by {holder}" if holder is not None else "was made by `afpe run` and is not running"

    def _nothing_finished(self, name: str) -> str | None:
        """The error of a study whose job succeeded while none of its search trials finished (the latest failed
        trial's first line says why); None when one did."""
        trials = search_trials(optuna.load_study(study_name=name, storage=self.storage).get_trials(deepcopy=False))
        if finished_count(trials):
            return None
        failed = [t for t in trials if t.state == TrialState.FAIL]
        cause = failed[-1].user_attrs.get("error") if failed else None
        first = (
            next((line.strip() for line in cause.splitlines() if line.strip()), "") if isinstance(cause, str) else ""
        )
        why = f"; the latest failure: {first}" if first else ""
        return f"no trial finished ({len(failed)} failed){why}"

    def _check_not_held(self, name: str) -> None:
        """Conflict naming the driver that holds the study's lease, if one does (e.g. an `afpe run`)."""
        holder = self.leases.holder(name)
        if holder is not None:
            raise Conflict(f"name: study {name!r} is being run by {holder}; wait for it to end or stop it first")

    def _stop_verified(self, name: str, job_id: str) -> str | None:
        """Revoke the job's lease, stop the job until Ray reports it ended, and wait until its driver no longer
        holds the study's lease; what could not be confirmed, or None."""
        self.leases.revoke(name, job_id)
        problem = None
        try:
            for _ in range(STOP_TRIES):
                state = self.backend.stop(job_id)
                if state is None or not state.active:
                    break
            else:
                problem = f"the cluster still reports the job {job_id} running after {STOP_TRIES} stops"
        except Exception as failure:  # noqa: BLE001 - any cluster problem: the revoked driver ends on its own
            problem = f"the cluster could not be reached to stop the job {job_id} ({failure}); its driver was revoked"
        if not self.leases.wait_until_not_held_by(name, job_id, RELEASE_WAIT_S):
            problem = f"the driver of the job {job_id} still held the study after {RELEASE_WAIT_S:.0f} s"
        return problem

    def _submit(self, record: StudyRecord) -> StudyRecord:
        """Submit the record's current attempt (idempotent per attempt id) and store its job id. A cluster
        that refuses is noted in `error`; the next refresh submits again."""
        try:
            job_id = self.backend.submit(record.name, record.attempt, record.spec, record.resume)
            error = None
        except Exception as failure:  # noqa: BLE001 - any cluster problem: keep the study queued, retry later
            job_id, error = None, f"job submission failed (retried on the next refresh): {failure}"
        return update_record(self.sessions, record.name, job_id=job_id, error=error)

    def _submitted(self, record: StudyRecord) -> StudyRecord:
        """The record of a submitted attempt; ServiceUnavailable when the cluster refused it (the study stays
        queued, recorded, and is submitted again on the next refresh)."""
        if record.job_id is None:
            raise ServiceUnavailable(f"study {record.name!r} is recorded and queued, but its {record.error}")
        return record

    def _failure_text(self, job_id: str) -> str:
        """Why the job failed, from the cluster (a placeholder when the cluster cannot be reached)."""
        try:
            return self.backend.failure_text(job_id)
        except Exception:  # noqa: BLE001 - any cluster problem: the failure itself is known
            return f"the job {job_id} failed; its log could not be read from the cluster"

    def _resubmit(self, record: StudyRecord, why: str) -> StudyRecord:
        """A job that ended through no fault of the study (`why`: the cluster does not know it, or its driver
        stopped on a storage outage), or was never submitted: the next attempt resumes the Optuna study, with
        `why` in the record's `note`; after MAX_ATTEMPTS attempts the study fails."""
        if record.job_id is not None:
            if record.attempt >= MAX_ATTEMPTS:
                error = f"{why} (attempt {record.attempt} of {MAX_ATTEMPTS}: no attempt left)"
                return update_record(
                    self.sessions, record.name, state=StudyState.FAILED, finished_at=utcnow(), error=error
                )
            self.leases.revoke(record.name, record.job_id)  # its driver may live on (an orphaned head): it ends
            self.leases.wait_until_not_held_by(record.name, record.job_id, RELEASE_WAIT_S)
            record = update_record(
                self.sessions,
                record.name,
                attempt=record.attempt + 1,
                resume=True,
                state=StudyState.QUEUED,
                job_id=None,
                note=f"attempt {record.attempt + 1} of {MAX_ATTEMPTS} resumes the study: {why}",
            )
        self._end_running_trials(record.name)
        return self._submit(record)

    def _end_running_trials(self, name: str) -> None:
        """Trials left RUNNING or WAITING by a job that ended get the honest state FAIL, while the service holds
        the study's lease; a live driver holding it (an `afpe run`, or a dead one's lease not yet expired) keeps
        them: they are its own, or the next holder fails them."""
        try:
            with self.leases.held(name, self.holder):
                study = optuna.load_study(study_name=name, storage=self.storage)
                fail_stale_trials(study, reason="its study's job ended before the trial finished")
        except LeaseError as refusal:
            log.info("trials of study %s left to the lease holder: %s", name, refusal)
