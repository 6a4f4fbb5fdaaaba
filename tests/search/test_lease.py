"""One driver per study (`afpe.search.lease`) on real SQLite and PostgreSQL: of many concurrent takers one
wins, a dead holder's lease is taken over, a revoked holder never runs the study again, and `afpe run` on a
study another driver holds exits 2 naming it, leaving that driver's RUNNING trials alone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search import validate_spec
from afpe.search.lease import (
    HEARTBEAT_S,
    HOLDER_ENV,
    LEASE_TTL_S,
    STALL_WATCH_S,
    LeaseHeldError,
    LeaseRevokedError,
    StudyLeases,
)
from afpe.search.storage import claim_study, create_engine, open_storage
from afpe.search.testing import tiny_synthetic2d


def test_of_eight_concurrent_takers_exactly_one_gets_the_lease(storage_url: str) -> None:
    StudyLeases(create_engine(storage_url))  # tables exist before the race, as a driver's open_storage makes them
    takers = [StudyLeases(create_engine(storage_url)) for _ in range(8)]  # one engine (own connections) each
    start = threading.Barrier(len(takers))
    outcomes: dict[str, str] = {}

    def take(index: int) -> None:
        start.wait()
        try:
            takers[index].acquire("contested", f"driver-{index}")
            outcomes[f"driver-{index}"] = "holder"
        except LeaseHeldError as refusal:
            outcomes[f"driver-{index}"] = str(refusal)

    threads = [threading.Thread(target=take, args=(index,)) for index in range(len(takers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [holder for holder, outcome in outcomes.items() if outcome == "holder"]
    assert len(winners) == 1, outcomes
    refusals = [outcome for outcome in outcomes.values() if outcome != "holder"]
    assert len(refusals) == 7 and all(f"being run by {winners[0]} (pid {os.getpid()}" in r for r in refusals)
    assert takers[0].holder("contested").id == winners[0]


def test_a_dead_holders_lease_expires_and_is_taken_over(storage_url: str) -> None:
    leases = StudyLeases(create_engine(storage_url), ttl_s=2.0)
    leases.acquire("study", "dead-driver")  # and never renewed
    with pytest.raises(LeaseHeldError, match="dead-driver"):
        leases.acquire("study", "next-driver")
    time.sleep(3.0)
    assert leases.holder("study") is None
    leases.acquire("study", "next-driver")
    assert leases.holder("study").id == "next-driver"
    assert not leases.renew("study", "dead-driver")  # a holder that comes back learns it lost the lease
    leases.release("study", "dead-driver")  # and cannot release another's
    assert leases.holder("study").id == "next-driver"


def test_a_resume_waits_out_a_holder_that_stopped_renewing_saying_so_once(storage_url: str) -> None:
    leases, lines = StudyLeases(create_engine(storage_url)), []
    leases.acquire("study", "killed-driver")  # and never renewed: a kill -9
    started = time.monotonic()
    leases.acquire_from_stalled("study", "resumer", lines.append)
    waited = time.monotonic() - started
    assert leases.holder("study").id == "resumer"
    assert len(lines) == 1 and "killed-driver (pid" in lines[0] and "stopped renewing its lease" in lines[0]
    assert STALL_WATCH_S <= waited < LEASE_TTL_S + 3


def test_a_resume_still_refuses_a_holder_that_renews(storage_url: str) -> None:
    leases, lines, stop = StudyLeases(create_engine(storage_url)), [], threading.Event()
    leases.acquire("study", "live-driver")

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            leases.renew("study", "live-driver")

    beating = threading.Thread(target=heartbeat)
    beating.start()
    try:
        with pytest.raises(LeaseHeldError, match="being run by live-driver"):
            leases.acquire_from_stalled("study", "resumer", lines.append)
    finally:
        stop.set()
        beating.join()
    assert lines == [] and leases.holder("study").id == "live-driver"


def test_a_revoked_holder_loses_the_lease_and_can_never_take_it_again(storage_url: str) -> None:
    leases = StudyLeases(create_engine(storage_url))
    leases.acquire("study", "afpe-study-1")
    assert leases.renew("study", "afpe-study-1")
    leases.revoke("study", "afpe-study-1")
    assert not leases.renew("study", "afpe-study-1")
    assert not leases.wait_until_not_held_by("study", "afpe-study-1", timeout_s=0.5)  # until it lets go
    leases.release("study", "afpe-study-1")
    assert leases.wait_until_not_held_by("study", "afpe-study-1", timeout_s=0.5)
    with pytest.raises(LeaseRevokedError, match="afpe-study-1 was cancelled"):
        leases.acquire("study", "afpe-study-1")
    leases.acquire("study", "afpe-study-2")  # the next attempt may run it


def afpe_run(spec_path: Path, storage: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "afpe.service", "run", str(spec_path), "--storage", storage, *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_afpe_run_on_a_study_another_driver_holds_exits_2_naming_it(storage_url: str, tmp_path: Path) -> None:
    spec = validate_spec(tiny_synthetic2d(name="held", n_trials=2))
    spec_path = tmp_path / "held.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    study = claim_study(open_storage(storage_url), spec, resume=False)
    study.ask({axis.param: FloatDistribution(axis.low, axis.high, log=True) for axis in spec.axes})  # its trial
    leases = StudyLeases(create_engine(storage_url), ttl_s=300)  # a live holder: its lease outlasts the test
    leases.acquire("held", "afpe-held-1")  # the service's job runs it

    env = {**os.environ, "AFPE_TUNE_DIR": str(tmp_path / "tune")}
    output, _ = afpe_run(spec_path, storage_url, "--resume", env=env).communicate(timeout=120)
    assert "afpe: error: study 'held' is being run by afpe-held-1 (pid" in output and "Traceback" not in output
    assert [t.state for t in optuna.load_study(study_name="held", storage=storage_url).trials] == [TrialState.RUNNING]
    assert leases.holder("held").id == "afpe-held-1"


def test_a_driver_whose_lease_is_revoked_ends_at_its_next_heartbeat(postgres_url: str, tmp_path: Path) -> None:
    spec = tiny_synthetic2d(name="revoked", n_trials=50, trainer={"epochs": 20})
    spec_path = tmp_path / "revoked.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "AFPE_TUNE_DIR": str(tmp_path / "tune"), HOLDER_ENV: "afpe-revoked-1"}
    driver = afpe_run(spec_path, postgres_url, env=env)
    leases = StudyLeases(create_engine(postgres_url))
    deadline = time.monotonic() + 240
    while not _has_running_trial(postgres_url, "revoked"):
        assert driver.poll() is None, driver.communicate()[0]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.5)
    assert leases.holder("revoked").id == "afpe-revoked-1"
    revoked_at = time.monotonic()
    leases.revoke("revoked", "afpe-revoked-1")
    output, _ = driver.communicate(timeout=60)
    print(f"driver ended {time.monotonic() - revoked_at:.1f} s after its lease was revoked")
    assert driver.returncode == 2 and "afpe-revoked-1 lost its lease" in output, output
    assert leases.holder("revoked") is None  # it let go as it ended
    states = [t.state for t in optuna.load_study(study_name="revoked", storage=postgres_url).trials]
    assert TrialState.COMPLETE not in states  # 20 epochs: none could finish before the revocation


def _has_running_trial(storage: str, name: str) -> bool:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    return any(trial.state == TrialState.RUNNING for trial in study.trials)
