"""`kill -9` of a driver mid-study, then `afpe run --resume` one second later (it waits out the dead driver's
lease, saying so): exactly n_trials finished, nothing RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search import run_study, validate_spec
from afpe.search.lease import LEASE_TTL_S, StudyLeases
from afpe.search.priors import PRIOR_KEY
from afpe.search.storage import create_engine

SPEC = {
    "name": "killed",
    "task": "synthetic2d",
    "task_options": {"n_train": 512, "n_val": 128},  # a few seconds per trial: time to kill one mid-way
    "axes": [
        {"name": "rows", "grid_axes": [0], "low": 0.05, "high": 20},
        {"name": "cols", "grid_axes": [1], "low": 0.05, "high": 20},
    ],
    "n_trials": 4,
    "trainer": {"epochs": 6, "batch_size": 32, "warmup_epochs": 0, "model": {"dim": 32, "depth": 2, "heads": 4}},
    "resources": {"cpus": 1, "max_concurrent": 1},
}


def afpe(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:  # noqa: ANN003
    return subprocess.Popen(
        [sys.executable, "-m", "afpe.service", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


def processes_in_session(session: int) -> list[int]:
    """Live processes (the driver, Ray's GCS, raylet, workers) of the killed driver's process session."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session and "State:\tZ" not in (entry / "status").read_text():
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError, FileNotFoundError):
                continue
    return found


def test_kill_9_then_resume_finishes_exactly_n_trials(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = tmp_path / "killed.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    env = {**os.environ, "AFPE_TUNE_DIR": str(tmp_path / "tune")}
    driver = afpe("run", str(spec_path), "--storage", postgres_url, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        try:
            trials = optuna.load_study(study_name="killed", storage=postgres_url).trials
        except KeyError:
            trials = []
        states = [trial.state for trial in trials]
        # mid-way through a trial (an epoch reported, most to come), so it is still running when the kill lands
        if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING and trials[-1].intermediate_values:
            if len(trials[-1].intermediate_values) <= SPEC["trainer"]["epochs"] // 2:
                break
        time.sleep(0.5)
    assert driver.poll() is None, driver.communicate()[0]
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and every process it started in its session
    driver.wait()
    gone_by = time.monotonic() + 30  # Ray's workers sit in their own process groups and follow their raylet
    while processes_in_session(driver.pid) and time.monotonic() < gone_by:
        time.sleep(0.5)
    assert processes_in_session(driver.pid) == []

    study = optuna.load_study(study_name="killed", storage=postgres_url)
    assert TrialState.RUNNING in [trial.state for trial in study.trials]  # Optuna alone never cleans this up
    finished_before = sum(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials)
    assert 1 <= finished_before < 4

    time.sleep(1.0)  # a user resuming at once: the dead driver's lease still has seconds to run
    assert StudyLeases(create_engine(postgres_url)).holder("killed") is not None
    # the resume as `afpe run --resume` runs it, in this process: a new process would spend longer than the
    # lease's 10 s importing torch on a loaded machine, and find the lease expired
    lines: list[str] = []
    monkeypatch.setenv("AFPE_TUNE_DIR", env["AFPE_TUNE_DIR"])
    summary = run_study(validate_spec(SPEC), storage=postgres_url, resume=True, on_storage=lines.append)
    assert summary.finished == 4
    assert len(lines) == 1 and "stopped renewing its lease" in lines[0] and f"at most {LEASE_TTL_S:.0f} s" in lines[0]

    trials = optuna.load_study(study_name="killed", storage=postgres_url).trials
    states = [trial.state for trial in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 4
    assert not {TrialState.RUNNING, TrialState.WAITING} & set(states)
    stale = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert stale and all("driver" in trial.user_attrs["error"] for trial in stale)
    # the resumed random search continues the sequence instead of replaying the first draws
    params = [tuple(trial.params.values()) for trial in trials if PRIOR_KEY not in trial.user_attrs]
    assert len(set(params)) == len(params)
    # each prior finished once: one the kill left unfinished ran again on resume, a finished one did not
    finished = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    ran = sorted(tuple(trial.user_attrs[PRIOR_KEY]) for trial in finished if PRIOR_KEY in trial.user_attrs)
    assert ran == sorted(prior.names for prior in validate_spec(SPEC).search_space().priors)


def test_resume_of_a_complete_study_runs_nothing(postgres_url: str, tmp_path: Path) -> None:
    """A name with trials needs --resume; a finished study resumed starts no Ray at all."""
    from afpe.search.storage import claim_study, open_storage

    spec = validate_spec({**SPEC, "n_trials": 1})
    study = claim_study(open_storage(postgres_url), spec, resume=False)
    trial = study.ask({axis.param: FloatDistribution(axis.low, axis.high, log=True) for axis in spec.axes})
    study.tell(trial, 0.5)
    started = time.monotonic()
    summary = run_study(spec, storage=postgres_url, resume=True)
    assert summary.finished == 1 and time.monotonic() - started < 3
