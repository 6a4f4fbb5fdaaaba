"""A database restart as an operator does it, on a private PostgreSQL server (initdb into a temp dir): `afpe run`
as a real subprocess on real Ray rides out a restart mid-study (every trial COMPLETE, every epoch recorded
once), and an outage longer than its budget ends the run with exit code 2 and a message saying how to resume,
after which `--resume` completes the study."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search.outage import StorageGuard, StorageOutage, is_transient
from afpe.search.storage import create_engine, open_storage
from afpe.search.testing import PrivatePostgres, tiny_synthetic2d
from afpe.search.trial_writes import set_intermediate_value
from afpe.search.trial_writes import trial_id as storage_id

N_TRIALS = 3
EPOCHS = 4
SPEC = tiny_synthetic2d(
    trainer={"epochs": EPOCHS}, n_trials=N_TRIALS, task_options={"n_train": 512, "n_val": 128}
)  # about a second per epoch here: time to take the database away mid-trial


def test_transient_errors_are_told_from_the_others(private_postgres: PrivatePostgres) -> None:
    engine = create_engine(private_postgres.url)
    with engine.connect() as connection:
        with pytest.raises(sqlalchemy.exc.ProgrammingError) as bad_sql:
            connection.exec_driver_sql("SELECT * FROM no_such_table")
        assert not is_transient(bad_sql.value)
    connection = engine.connect()
    private_postgres.stop()  # "terminating connection due to administrator command"
    with pytest.raises(sqlalchemy.exc.OperationalError) as shut_down:
        connection.exec_driver_sql("SELECT 1")
    assert is_transient(shut_down.value)
    with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
        engine.connect()
    assert is_transient(refused.value)
    with pytest.raises(ValueError) as not_up:  # what a driver started before its database meets
        open_storage(private_postgres.url)
    assert is_transient(not_up.value) and str(not_up.value).startswith("storage: cannot connect to")
    with pytest.raises(sqlalchemy.exc.OperationalError) as unresolved:  # a container network's DNS reloading
        create_engine("postgresql+psycopg://afpe@no-such-host.invalid/afpe").connect()
    assert is_transient(unresolved.value)
    private_postgres.start()
    with engine.connect() as connection:  # pool_pre_ping: a fresh connection after the restart
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    for refused_url in (  # the server answered and said no: waiting would not help
        private_postgres.url.replace("postgres@", "nobody@"),
        private_postgres.url.removesuffix("/postgres") + "/no_such_database",
    ):
        with pytest.raises(ValueError) as refusal:
            open_storage(refused_url)
        assert "does not exist" in str(refusal.value) and not is_transient(refusal.value)


def test_writes_buffered_through_an_outage_land_in_order_once(private_postgres: PrivatePostgres) -> None:
    lines: list[str] = []
    study = optuna.create_study(storage=open_storage(private_postgres.url), study_name="buffered")
    trial = study.ask({"s_x": FloatDistribution(0.1, 10, log=True)})
    guard = StorageGuard("pg", budget_s=60, on_event=lines.append)
    guard.write(lambda: set_intermediate_value(study, storage_id(trial), 1, 0.9))
    private_postgres.stop()
    for step, value in ((2, 0.8), (3, 0.7), (3, 0.6)):  # the last report of a step wins, as it would live
        guard.write(lambda step=step, value=value: set_intermediate_value(study, storage_id(trial), step, value))
    assert guard.down and len(guard.pending) == 3 and not guard.flush()
    with pytest.raises(StorageOutage, match="storage outage: pg unreachable"):
        StorageGuard("pg", budget_s=0.5).call(study.get_trials)
    private_postgres.start()
    assert guard.call(lambda: True) and not guard.pending and not guard.down
    assert study.trials[0].intermediate_values == {1: 0.9, 2: 0.8, 3: 0.6}
    assert len(lines) == 2 and lines[0].startswith("storage lost: pg is unreachable; retrying for up to 60 s")
    assert lines[1].startswith("storage back after")


def test_sqlite_writers_wait_for_each_other_instead_of_failing(tmp_path: Path) -> None:
    """The driver and the service write one SQLite file: WAL mode, and a writer waits out another's lock."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    open_storage(url)
    driver, service = create_engine(url), create_engine(url)
    with driver.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with service.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (text TEXT)")
    locked = threading.Event()

    def driver_writes() -> None:  # the driver holds the write lock for a second
        with driver.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            connection.exec_driver_sql("INSERT INTO notes VALUES ('driver')")
            locked.set()
            time.sleep(1.0)
            connection.commit()

    writer = threading.Thread(target=driver_writes)
    writer.start()
    assert locked.wait(30)
    started = time.monotonic()
    with service.begin() as connection:  # waits for the lock (busy timeout), no "database is locked"
        connection.exec_driver_sql("INSERT INTO notes VALUES ('service')")
    assert time.monotonic() - started > 0.5
    writer.join()
    with service.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM notes").scalar() == 2


def start_afpe(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "afpe.service", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_a_trial_mid_way(driver: subprocess.Popen, url: str, name: str) -> None:
    """Until a trial is RUNNING with at least one epoch recorded (so its next reports fall into the outage)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        try:
            trials = optuna.load_study(study_name=name, storage=url).trials
        except KeyError:
            trials = []
        if any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials):
            return
        time.sleep(0.3)
    pytest.fail(f"no trial got mid-way: {driver.communicate()}")


@pytest.fixture
def study_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AFPE_TUNE_DIR": str(tmp_path / "tune")}


def write_spec(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "name": name}))
    return path


def test_a_restart_mid_study_is_a_pause(private_postgres: PrivatePostgres, tmp_path: Path, study_env) -> None:
    url = private_postgres.url
    driver = start_afpe("run", str(write_spec(tmp_path, "restarted")), "--storage", url, env=study_env)
    wait_for_a_trial_mid_way(driver, url, "restarted")
    private_postgres.stop()
    time.sleep(4)  # down for 4 s: reports of the running trial are buffered meanwhile
    private_postgres.start()
    output, errors = driver.communicate(timeout=600)
    assert driver.returncode == 0, output + errors
    assert f"{N_TRIALS}/{N_TRIALS} finished" in output
    lost = [line for line in output.splitlines() if line.startswith("storage lost")]
    back = [line for line in output.splitlines() if line.startswith("storage back")]
    assert len(lost) == 1 and len(back) == 1, output
    assert "127.0.0.1" in lost[0]

    study = optuna.load_study(study_name="restarted", storage=url)
    best = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * N_TRIALS
    for trial in study.trials:  # every epoch's report is there once, the value is the best epoch's
        assert sorted(trial.intermediate_values) == list(range(1, EPOCHS + 1))
        assert trial.user_attrs["epochs"] == EPOCHS and trial.value == best(trial.intermediate_values.values())


def test_an_outage_past_its_budget_exits_2_then_resume_completes(
    private_postgres: PrivatePostgres, tmp_path: Path, study_env
) -> None:
    secret = "pw-not-in-the-message"
    url = private_postgres.url.replace("postgres@", f"postgres:{secret}@")  # trust auth ignores it
    spec = str(write_spec(tmp_path, "outlasted"))
    driver = start_afpe("run", spec, "--storage", url, "--storage-outage", "3", env=study_env)
    wait_for_a_trial_mid_way(driver, private_postgres.url, "outlasted")
    private_postgres.stop()
    output, errors = driver.communicate(timeout=300)
    assert driver.returncode == 2, output + errors
    message = errors.strip().splitlines()[-1]
    assert message.startswith("storage outage: postgresql+psycopg://postgres@127.0.0.1"), errors
    assert "budget 3 s" in message and "stay RUNNING until --resume records them FAIL" in message
    assert f"afpe run {spec} --storage postgresql+psycopg://postgres@127.0.0.1:" in message
    assert message.endswith("--resume") and secret not in output + errors
    assert "Traceback" not in errors

    private_postgres.start()
    running = optuna.load_study(study_name="outlasted", storage=private_postgres.url).trials
    assert TrialState.RUNNING in [t.state for t in running]  # the database was down: nothing could be written
    resume = start_afpe("run", spec, "--storage", url, "--resume", env=study_env)
    output, errors = resume.communicate(timeout=600)
    assert resume.returncode == 0, output + errors
    assert f"{N_TRIALS}/{N_TRIALS} finished" in output
    trials = optuna.load_study(study_name="outlasted", storage=private_postgres.url).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == N_TRIALS and not {TrialState.RUNNING, TrialState.WAITING} & set(states)
    assert all("driver" in t.user_attrs["error"] for t in trials if t.state == TrialState.FAIL)


def test_a_driver_started_before_its_database_waits_for_it_and_a_refused_one_does_not(
    private_postgres: PrivatePostgres, tmp_path: Path, study_env
) -> None:
    private_postgres.stop()  # as in `docker compose up`: the driver may start while the database is not up yet
    driver = start_afpe("run", str(write_spec(tmp_path, "early")), "--storage", private_postgres.url, env=study_env)
    # the study's line, the priors it runs first (from the spec alone: before any storage), then (bounded by the
    # budget) the wait's
    said = [driver.stdout.readline() for _ in range(3)]
    assert said[0].startswith("study early: ") and said[1].startswith("priors (the first trials"), said
    assert said[2].startswith("storage lost: postgresql+psycopg://postgres@127.0.0.1"), said + [driver.stderr.read()]
    private_postgres.start()
    output, errors = driver.communicate(timeout=600)
    assert driver.returncode == 0, output + errors
    assert output.count("storage back") == 1 and f"{N_TRIALS}/{N_TRIALS} finished" in output, output

    refused = private_postgres.url.replace("postgres@", "nobody@")
    driver = start_afpe("run", str(write_spec(tmp_path, "refused")), "--storage", refused, env=study_env)
    output, errors = driver.communicate(timeout=120)  # not the 300 s outage budget
    assert driver.returncode == 2 and 'role "nobody" does not exist' in errors, output + errors
    assert "storage lost" not in output and "Traceback" not in errors


def test_a_postmaster_killed_around_epoch_1_is_a_pause(
    private_postgres: PrivatePostgres, tmp_path: Path, study_env
) -> None:
    """Issue 30 row 1: `kill -9` of the postmaster while two trials start; the epoch-1 reports (device and dtype
    attrs, first intermediate values) reach the driver while the database is down, and the restarted server
    gets them all once it is back: the run completes, no trial lost."""
    url, name = private_postgres.url, "killed"
    spec = {**tiny_synthetic2d(trainer={"epochs": 2}, n_trials=2), "name": name}
    spec["resources"] = {"cpus": 1, "max_concurrent": 2}
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(spec))
    driver = start_afpe("run", str(tmp_path / "killed.yaml"), "--storage", url, env=study_env)
    tune = Path(study_env["AFPE_TUNE_DIR"])
    deadline = time.monotonic() + 600  # a loaded machine takes minutes to start Ray's workers
    while not list(tune.glob("*/logs/trial-*.log")):  # a trial's worker is up: its first epoch is a moment away
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.2)
    private_postgres.kill()
    killed = time.monotonic()
    while not any(path.stat().st_size for path in tune.glob("*/*/result.json")):  # the driver got an epoch-1 report
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.2)
    time.sleep(0.5)
    while True:  # the killed postmaster's backends exit when they notice; until then a new one refuses to start
        try:
            private_postgres.start()
            break
        except subprocess.CalledProcessError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    down_s = time.monotonic() - killed
    output, errors = driver.communicate(timeout=600)
    assert driver.returncode == 0, output + errors
    back = [line for line in output.splitlines() if line.startswith("storage back after")]
    assert "2/2 finished" in output and len(back) >= 1, output
    print(f"database down {down_s:.1f} s; driver: {back}")
    trials = _trials(url, name)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        assert sorted(trial.intermediate_values) == [1, 2] and trial.user_attrs["device"] == "cpu"
        assert trial.user_attrs["dtype"] and trial.user_attrs["epochs"] == 2


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=url).trials
    except KeyError:
        return []
