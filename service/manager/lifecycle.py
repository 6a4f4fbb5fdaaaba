"""`StudyLifecycle`: a study's life as jobs of a `JobBackend`: create, cancel, resume (or adopt a study that
`afpe run` made).

State lives in two places of one database: the service table (`records.StudyRecord`: spec, job, state) and
the Optuna study of the same name (trials). What the parts of the lifecycle share (the table, the storage, the
backend, the one-driver leases, a lock per study) is `study_jobs.StudyJobs`; job states are followed by
`job_follower.JobFollower` (the background reconciler's tick, and before a cancel or resume). A create or resume
whose submission fails is recorded (queued, submitted again on the next refresh) and answered with
ServiceUnavailable. A cancel is verified: the job's lease is revoked first (a job Ray reports stopped may still
start its entrypoint, whose driver is then refused), the job is stopped until Ray reports it ended, and its
driver must have let go of the lease before its RUNNING trials become FAIL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from afpe.search.analysis import finished_count, search_trials
from afpe.search.storage import StudyConflictError, StudyExistsError, claim_study
from afpe.search.study_list import Origin
from afpe.service.errors import Conflict
from afpe.service.manager.job_follower import RELEASE_WAIT_S, JobFollower
from afpe.service.manager.records import (
    StudyRecord,
    StudySource,
    StudyState,
    compare_and_update,
    get_record,
    update_record,
    utcnow,
)
from afpe.service.manager.spec_admission import SpecAdmission

STOP_TRIES = 2


class StudyLifecycle:
    def __init__(self, follower: JobFollower, catalog: SpecAdmission):
        """`follower` follows the jobs (and holds the shared `StudyJobs`); `catalog` admits a spec within the
        service's bounds."""
        self.follower = follower
        self.jobs = follower.jobs
        self.catalog = catalog

    def create(self, body: Any) -> tuple[StudyRecord, bool]:
        """(record, created): a new study is queued and submitted; the same spec again returns the study.
        InvalidInput for a bad spec, Conflict for a name another spec owns or another driver runs,
        ServiceUnavailable when the submission failed (the study is recorded and submitted again later)."""
        spec = self.catalog.validate(body)
        self.catalog.check_data(spec)
        data = spec.model_dump(mode="json")
        with self.jobs.study_lock(spec.name):  # through the submission: the reconciler never submits it at once
            with self.jobs.sessions.begin() as session:
                record = session.get(StudyRecord, spec.name)
                if record is not None:
                    if record.spec != data:
                        raise Conflict(f"name: study {spec.name!r} already exists with a different spec")
                    return record, False
                self.jobs.check_not_held(spec.name)
                try:
                    claim_study(self.jobs.storage, spec, resume=False, origin=Origin.SERVICE)
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
            return self.jobs.submitted(record), True

    def cancel(self, name: str) -> StudyRecord:
        """Stop the study's job and verify it ended (see the module docstring); its running trials become FAIL.
        Conflict unless the study is active. A cluster that cannot be reached does not keep a cancel from
        happening: the revoked driver ends on its own, and the record's `error` says so."""
        record = self.follower.refresh(self.jobs.record(name), force=True)
        if not record.managed:
            raise Conflict(f"name: study {name!r} {self._unmanaged(record)}; the service has no job of it to cancel")
        with self.jobs.study_lock(name):
            record = get_record(self.jobs.sessions, name)
            if not record.state.active:
                raise Conflict(f"name: study {name!r} is already {record.state}")
            error = self._stop_verified(name, record.job_id) if record.job_id else None
            record = update_record(
                self.jobs.sessions, name, state=StudyState.CANCELLED, finished_at=utcnow(), error=error
            )
            self.jobs.end_running_trials(name)
        return record

    def resume(self, name: str, n_trials: int | None = None) -> StudyRecord:
        """Resubmit a failed or cancelled study (or a succeeded one with a larger n_trials) with --resume; a study
        `afpe run` made is adopted (`adopt`). Conflict for an imported or active study, one another driver runs, a
        succeeded one without a new n_trials, or a concurrent resume that won; ServiceUnavailable when the
        submission failed (retried later); NotFound when no study has this name."""
        record = self.follower.refresh(self.jobs.record(name), force=True)
        if record.source == StudySource.IMPORT:
            raise Conflict(f"name: study {name!r} was imported; it cannot run")
        if not record.managed:
            return self.adopt(name, n_trials)
        with self.jobs.study_lock(name):
            record = get_record(self.jobs.sessions, name)
            if record.state.active:
                raise Conflict(f"name: study {name!r} is {record.state}; cancel it first")
            spec = dict(record.spec)
            if n_trials is not None:
                spec = self.catalog.validate({**spec, "n_trials": n_trials}).model_dump(mode="json")
            elif record.state == StudyState.SUCCEEDED:
                raise Conflict(f"name: study {name!r} succeeded; give a larger n_trials to run more trials")
            self.jobs.check_not_held(name)
            resumed = compare_and_update(
                self.jobs.sessions,
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
            return self.jobs.submitted(resumed)

    def adopt(self, name: str, n_trials: int | None = None) -> StudyRecord:
        """Run a study that `afpe run` made (it has no record here) as the service's own from now on: its stored
        spec (with `n_trials` when given) within the service's bounds, recorded as a `cli` study and submitted
        with --resume under the one-driver lease. Conflict naming the holder while a driver runs it, for one
        that finished its n_trials when no larger n_trials is given, or a concurrent adoption that won;
        InvalidInput for a spec outside the service's bounds; NotFound when no afpe study has this name."""
        study = self.jobs.optuna_study(name)
        with self.jobs.study_lock(name):
            self.jobs.check_not_held(name)
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
                with self.jobs.sessions.begin() as session:
                    session.add(record)
            except IntegrityError:
                raise Conflict(f"name: study {name!r} was resumed by another request meanwhile") from None
            return self.jobs.submitted(record)  # in the lock, as `create`'s

    def _unmanaged(self, record: StudyRecord) -> str:
        """Why the service runs no job of `record`'s study, for a Conflict."""
        if record.source == StudySource.IMPORT:
            return "was imported"
        holder = self.jobs.leases.holder(record.name)
        return f"is run by {holder}" if holder is not None else "was made by `afpe run` and is not running"

    def _stop_verified(self, name: str, job_id: str) -> str | None:
        """Revoke the job's lease, stop the job until Ray reports it ended, and wait until its driver no longer
        holds the study's lease; what could not be confirmed, or None."""
        self.jobs.leases.revoke(name, job_id)
        problem = None
        try:
            for _ in range(STOP_TRIES):
                state = self.jobs.backend.stop(job_id)
                if state is None or not state.active:
                    break
            else:
                problem = f"the cluster still reports the job {job_id} running after {STOP_TRIES} stops"
        except Exception as failure:  # noqa: BLE001 - any cluster problem: the revoked driver ends on its own
            problem = f"the cluster could not be reached to stop the job {job_id} ({failure}); its driver was revoked"
        if not self.jobs.leases.wait_until_not_held_by(name, job_id, RELEASE_WAIT_S):
            problem = f"the driver of the job {job_id} still held the study after {RELEASE_WAIT_S:.0f} s"
        return problem
