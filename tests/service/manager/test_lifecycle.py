"""The study lifecycle over a fake of Ray's job API (an external system), on real SQLite and PostgreSQL:
every state change a cluster can cause, and what the service does about it; a database restart under the
running service, on a private PostgreSQL server."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search.lease import StudyLeases
from afpe.search.outage import StorageOutage
from afpe.search.storage import create_engine, open_storage
from afpe.service.errors import Conflict, InvalidInput, ServiceUnavailable
from afpe.service.manager.job_follower import MAX_ATTEMPTS, JobFollower
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.records import StudyState, get_record, open_records
from afpe.service.manager.spec_admission import SpecAdmission
from afpe.service.manager.study_jobs import StudyJobs


@pytest.fixture
def lifecycle(make_settings, storage_url, jobs) -> StudyLifecycle:
    settings = make_settings(storage=storage_url).resolved()
    follower = JobFollower(StudyJobs(open_records(storage_url), open_storage(storage_url), jobs), refresh_s=0.0)
    return StudyLifecycle(follower, SpecAdmission(settings))


def quickstart(lifecycle: StudyLifecycle, name: str = "life", n_trials: int = 3) -> dict:
    spec = lifecycle.catalog.shipped_spec("quickstart").model_dump(mode="json")
    return {**spec, "name": name, "n_trials": n_trials, "data_root": None}


def start_trial(lifecycle: StudyLifecycle, name: str) -> None:
    """A trial the job's driver started (RUNNING in the Optuna study)."""
    study = optuna.load_study(study_name=name, storage=lifecycle.jobs.storage)
    study.ask({"s_xy": FloatDistribution(0.01, 10, log=True)})


def finish_trial(lifecycle: StudyLifecycle, name: str) -> None:
    """A search trial the job's driver finished (COMPLETE in the Optuna study)."""
    study = optuna.load_study(study_name=name, storage=lifecycle.jobs.storage)
    trial = study.ask({"s_xy": FloatDistribution(0.01, 10, log=True)})
    study.tell(trial, 0.5)


def fail_trial(lifecycle: StudyLifecycle, name: str, error: str) -> None:
    """A search trial the job's driver recorded as FAIL with `error`."""
    study = optuna.load_study(study_name=name, storage=lifecycle.jobs.storage)
    trial = study.ask({"s_xy": FloatDistribution(0.01, 10, log=True)})
    trial.set_user_attr("error", error)
    study.tell(trial, state=TrialState.FAIL)


def trial_states(lifecycle: StudyLifecycle, name: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name=name, storage=lifecycle.jobs.storage).trials]


def test_a_study_runs_succeeds_and_fails_what_its_job_left_running(lifecycle, jobs):
    record, created = lifecycle.create(quickstart(lifecycle))
    assert created and record.state == StudyState.QUEUED and record.job_id == "afpe-life-1"
    assert jobs.submissions == [("afpe-life-1", False)]
    assert lifecycle.create(quickstart(lifecycle))[1] is False
    with pytest.raises(Conflict, match="different spec"):
        lifecycle.create(quickstart(lifecycle, n_trials=4))

    jobs.move("afpe-life-1", StudyState.RUNNING)
    running = lifecycle.follower.refresh(record)
    assert running.state == StudyState.RUNNING and running.started_at is not None
    finish_trial(lifecycle, "life")  # a study succeeds only with a finished trial (issue 26: see the next test)
    start_trial(lifecycle, "life")
    jobs.move("afpe-life-1", StudyState.SUCCEEDED)
    done = lifecycle.follower.refresh(running)
    assert done.state == StudyState.SUCCEEDED and done.finished_at is not None and done.error is None
    assert trial_states(lifecycle, "life") == [TrialState.COMPLETE, TrialState.FAIL]


def test_studies_past_the_running_cap_wait_queued_and_start_oldest_first(make_settings, storage_url, jobs):
    settings = make_settings(storage=storage_url, max_running_studies=2).resolved()
    assert settings.running_cap() == 2
    jobs_ = StudyJobs(open_records(storage_url), open_storage(storage_url), jobs, settings.running_cap())
    capped = StudyLifecycle(JobFollower(jobs_, refresh_s=0.0), SpecAdmission(settings))
    records = [capped.create(quickstart(capped, name=f"cap{i}"))[0] for i in range(4)]
    assert [r.job_id for r in records] == ["afpe-cap0-1", "afpe-cap1-1", None, None]
    assert records[2].state == StudyState.QUEUED and records[2].error is None
    assert records[3].note == "waiting for a slot: 2 of 2 studies run (max_running_studies), 1 queued before it"
    capped.follower.reconcile()  # nothing freed: nothing submitted
    assert [job for job, _ in jobs.submissions] == ["afpe-cap0-1", "afpe-cap1-1"]

    finish_trial(capped, "cap1")
    jobs.move("afpe-cap1-1", StudyState.SUCCEEDED)
    capped.follower.reconcile()  # cap1's slot goes to cap2, the older of the two waiting
    assert [job for job, _ in jobs.submissions] == ["afpe-cap0-1", "afpe-cap1-1", "afpe-cap2-1"]
    assert get_record(jobs_.sessions, "cap2").note is None and get_record(jobs_.sessions, "cap3").job_id is None

    capped.cancel("cap3")  # a waiting study cancels without a job
    capped.cancel("cap0")
    capped.follower.reconcile()
    assert get_record(jobs_.sessions, "cap3").state == StudyState.CANCELLED
    assert [job for job, _ in jobs.submissions] == ["afpe-cap0-1", "afpe-cap1-1", "afpe-cap2-1"]
    assert capped.resume("cap3").job_id == "afpe-cap3-2"  # a slot is free again


def test_the_running_cap_defaults_to_the_private_heads_cpus(make_settings):
    assert make_settings(ray_num_cpus=3).resolved().running_cap() == 3
    assert make_settings(ray_num_cpus=0).resolved().running_cap() is None
    assert make_settings(ray_address="http://127.0.0.1:8265").resolved().running_cap() is None


def test_a_job_that_succeeded_without_a_finished_trial_fails_the_study_with_its_cause(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.move(record.job_id, StudyState.RUNNING)
    record = lifecycle.follower.refresh(record)
    fail_trial(lifecycle, "life", "DataError: data_root: /nowhere is not a directory\nTraceback ...")
    jobs.move(record.job_id, StudyState.SUCCEEDED)  # an older driver exited 0 with nothing finished
    done = lifecycle.follower.refresh(record)
    assert done.state == StudyState.FAILED and done.finished_at is not None
    assert (
        done.error
        == "no trial finished (1 failed); the latest failure: DataError: data_root: /nowhere is not a directory"
    )


def test_a_failed_job_keeps_the_drivers_one_line_error(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.failures[record.job_id] = (
        "Job entrypoint command failed with exit code 1\nstudy life: 0/3 finished (fail 3)\n"
        "afpe: error: no trial finished: DataError: data_root: /nowhere is not a directory"
    )
    jobs.move(record.job_id, StudyState.FAILED)
    failed = lifecycle.follower.refresh(record)
    assert failed.state == StudyState.FAILED
    assert failed.error == "no trial finished: DataError: data_root: /nowhere is not a directory"


def test_a_failed_job_keeps_its_log_tail(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.move(record.job_id, StudyState.FAILED)
    failed = lifecycle.follower.refresh(record)
    assert failed.state == StudyState.FAILED and "CUDA out of memory" in failed.error


def test_a_lost_job_is_resubmitted_with_resume_until_max_attempts(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    for attempt in range(2, MAX_ATTEMPTS + 1):
        jobs.jobs.clear()  # the private head stopped with the old service
        record = lifecycle.follower.refresh(record)
        assert record.state == StudyState.QUEUED and record.attempt == attempt and record.resume
        assert jobs.submissions[-1] == (f"afpe-life-{attempt}", True)
    jobs.jobs.clear()
    record = lifecycle.follower.refresh(record)
    assert record.state == StudyState.FAILED and f"lost the job afpe-life-{MAX_ATTEMPTS}" in record.error


def test_an_unreachable_cluster_keeps_the_study_queued_then_submits(lifecycle, jobs):
    jobs.down = True
    with pytest.raises(ServiceUnavailable, match="recorded and queued, but its job submission failed"):
        lifecycle.create(quickstart(lifecycle))
    record = get_record(lifecycle.jobs.sessions, "life")
    assert record.state == StudyState.QUEUED and record.job_id is None and "submission failed" in record.error
    jobs.down = False
    record = lifecycle.follower.refresh(record)
    assert record.job_id == "afpe-life-1" and record.error is None and record.attempt == 1


def test_cancel_and_resume(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.move(record.job_id, StudyState.RUNNING)
    start_trial(lifecycle, "life")
    cancelled = lifecycle.cancel("life")
    assert cancelled.state == StudyState.CANCELLED and jobs.stopped == ["afpe-life-1"]
    assert trial_states(lifecycle, "life") == [TrialState.FAIL]
    with pytest.raises(Conflict, match="already cancelled"):
        lifecycle.cancel("life")
    resumed = lifecycle.resume("life")
    assert resumed.state == StudyState.QUEUED and resumed.attempt == 2 and resumed.job_id == "afpe-life-2"
    assert jobs.submissions[-1] == ("afpe-life-2", True)
    with pytest.raises(Conflict, match="cancel it first"):
        lifecycle.resume("life")
    finish_trial(lifecycle, "life")  # a study succeeds only with a finished trial
    jobs.move("afpe-life-2", StudyState.SUCCEEDED)
    assert lifecycle.follower.refresh(resumed).state == StudyState.SUCCEEDED
    with pytest.raises(Conflict, match="larger n_trials"):
        lifecycle.resume("life")
    with pytest.raises(InvalidInput, match="n_trials"):
        lifecycle.resume("life", n_trials=100_000)
    more = lifecycle.resume("life", n_trials=5)
    assert more.spec["n_trials"] == 5 and more.attempt == 3


def test_a_stop_outside_the_service_is_noted_and_reconcile_follows_active_studies(lifecycle, jobs):
    first, _ = lifecycle.create(quickstart(lifecycle, name="one"))
    lifecycle.create(quickstart(lifecycle, name="two"))
    jobs.move(first.job_id, StudyState.CANCELLED)
    jobs.move("afpe-two-1", StudyState.RUNNING)
    lifecycle.follower.reconcile()
    one, two = (get_record(lifecycle.jobs.sessions, name) for name in ("one", "two"))
    assert one.state == StudyState.CANCELLED and "outside the service" in one.error
    assert two.state == StudyState.RUNNING and two.started_at is not None


def test_reads_serve_the_last_known_state_marked_stale_while_the_cluster_is_down(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.move(record.job_id, StudyState.RUNNING)
    record = lifecycle.follower.refresh(record)
    jobs.down = True
    stale = lifecycle.follower.refresh(record)
    assert stale.state == StudyState.RUNNING and lifecycle.follower.is_stale("life")
    jobs.down = False
    assert lifecycle.follower.refresh(stale).state == StudyState.RUNNING and not lifecycle.follower.is_stale("life")


def test_of_eight_concurrent_resumes_one_submits_a_job(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    lifecycle.cancel("life")
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def resume() -> None:
        start.wait()
        try:
            outcomes.append(lifecycle.resume("life").job_id)
        except Conflict as refusal:
            outcomes.append(refusal.message)

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("afpe-life-2") == 1 and sum("cancel it first" in o for o in outcomes) == 7, outcomes
    assert [job for job, _ in jobs.submissions] == ["afpe-life-1", "afpe-life-2"]


def test_a_study_another_driver_holds_is_neither_resumed_nor_cleaned_up(lifecycle, jobs, storage_url):
    record, _ = lifecycle.create(quickstart(lifecycle))
    jobs.move(record.job_id, StudyState.RUNNING)
    record = lifecycle.follower.refresh(record)
    cli = StudyLeases(create_engine(storage_url), ttl_s=300)
    cli.acquire("life", "afpe-run-cli")  # `afpe run life --resume` from a shell (the job's driver never got it)
    start_trial(lifecycle, "life")
    jobs.move(record.job_id, StudyState.FAILED)
    assert lifecycle.follower.refresh(record).state == StudyState.FAILED
    assert trial_states(lifecycle, "life") == [TrialState.RUNNING]  # the holder's trial, not the ended job's
    with pytest.raises(Conflict, match="is being run by afpe-run-cli"):
        lifecycle.resume("life")
    cli.release("life", "afpe-run-cli")
    assert lifecycle.resume("life").attempt == 2


def test_cancel_revokes_the_jobs_driver(lifecycle, jobs, storage_url):
    record, _ = lifecycle.create(quickstart(lifecycle))
    lifecycle.cancel("life")
    leases = StudyLeases(create_engine(storage_url))
    assert leases.revoked("life", "afpe-life-1") and not leases.revoked("life", "afpe-life-2")


def outage_exit(job_id: str) -> str:
    """What Ray says of a job whose `afpe run` stopped on a storage outage (exit code 2 and its message)."""
    message = StorageOutage("postgresql+psycopg://afpe@db/afpe", 301, 300, [4], recorded=False)
    return f"Job entrypoint command failed with exit code 2\n{message}. Once it is back, resume it: ..."


def test_a_job_stopped_by_a_storage_outage_is_resumed_within_the_attempt_limit(lifecycle, jobs):
    record, _ = lifecycle.create(quickstart(lifecycle))
    for attempt in range(2, MAX_ATTEMPTS + 1):
        jobs.move(record.job_id, StudyState.RUNNING)
        record = lifecycle.follower.refresh(record)
        start_trial(lifecycle, "life")
        jobs.failures[record.job_id] = outage_exit(record.job_id)
        jobs.move(record.job_id, StudyState.FAILED)
        record = lifecycle.follower.refresh(record)
        assert record.state == StudyState.QUEUED and record.attempt == attempt and record.resume
        assert jobs.submissions[-1] == (f"afpe-life-{attempt}", True)
        assert f"attempt {attempt} of {MAX_ATTEMPTS} resumes the study" in record.note
        assert "storage outage" in record.note and record.error is None
        assert set(trial_states(lifecycle, "life")) == {TrialState.FAIL}  # nothing left RUNNING between attempts
    jobs.failures[record.job_id] = outage_exit(record.job_id)
    jobs.move(record.job_id, StudyState.FAILED)
    record = lifecycle.follower.refresh(record)
    assert record.state == StudyState.FAILED and "no attempt left" in record.error
    assert "storage outage" in record.error

    other, _ = lifecycle.create(quickstart(lifecycle, name="crashed"))
    jobs.move(other.job_id, StudyState.FAILED)  # any other failure is the study's own: not resubmitted
    assert lifecycle.follower.refresh(other).state == StudyState.FAILED


def test_the_service_rides_out_a_database_restart(private_postgres, make_settings, jobs, auth):
    """A restart of the service's database (a private server): reads during it wait for it, reads after it
    work (pool_pre_ping), a read while it stays down is a 503 with a message; a study whose driver then stops
    on the outage is resubmitted, and its page says so."""
    from fastapi.testclient import TestClient

    from afpe.service.app import create_app

    app = create_app(make_settings(storage=private_postgres.url), backend=jobs)
    with TestClient(app, raise_server_exceptions=False) as client:
        spec = client.get("/api/specs/quickstart").json() | {"name": "kept", "n_trials": 2, "data_root": None}
        assert client.post("/api/studies", json=spec, headers=auth).status_code == 201
        assert client.get("/api/studies/kept").json()["attempt"] == 1

        private_postgres.restart()
        assert client.get("/api/studies/kept").status_code == 200  # the pool's dead connections are replaced
        assert client.get("/api/studies").status_code == 200

        private_postgres.stop()
        restarted = threading.Timer(2.0, private_postgres.start)
        restarted.start()
        started = time.monotonic()
        during = client.get("/api/studies/kept")  # waits for the database instead of failing
        restarted.join()
        assert during.status_code == 200 and time.monotonic() - started >= 1.5, during.text

        private_postgres.stop()
        down = client.get("/api/studies/kept")  # down for longer than the service waits
        assert down.status_code == 503 and "database is unreachable" in down.json()["error"]
        private_postgres.start()

        jobs.failures["afpe-kept-1"] = outage_exit("afpe-kept-1")
        jobs.move("afpe-kept-1", StudyState.FAILED)
        deadline = time.monotonic() + 30  # the service's background reconciler resubmits it (reads never write)
        while (status := client.get("/api/studies/kept").json())["attempt"] < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status["state"] == "queued" and status["attempt"] == 2 and jobs.submissions[-1] == ("afpe-kept-2", True)
        assert "storage outage" in status["note"]
        assert "attempt 2 of 5 resumes the study" in client.get("/studies/kept").text
