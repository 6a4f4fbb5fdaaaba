"""Issue 26, item 9: `afpe studies` and `afpe status` without a name list every afpe study of a storage with its
origin (the `origin` attr a driver writes: $AFPE_ORIGIN, else cli), state (running while a driver holds the
lease, succeeded at n_trials, else failed), finished count and answer; a study afpe did not make is left out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
from optuna.trial import TrialState

from afpe.search.lease import StudyLeases
from afpe.search.shipped_specs import spec_path
from afpe.search.spec_loading import load_spec
from afpe.search.storage import claim_study, create_engine, open_storage
from afpe.search.study_list import entry_json, list_studies, run_origin
from afpe.search.testing import add_trials, make_trial


def write_studies(url: str, monkeypatch) -> None:
    """'done' (an `afpe run`: 4 of 4 finished), 'half' (made by a service job: 1 of 4, then 1 FAIL), 'foreign'
    (an Optuna study afpe did not make)."""
    storage = open_storage(url)
    spec = load_spec(spec_path("quickstart"), ["name=done", "n_trials=4", "repeats=null"])
    monkeypatch.delenv("AFPE_ORIGIN", raising=False)
    add_trials(claim_study(storage, spec, resume=False, origin=run_origin()), spec.model_dump(mode="json"), 4)
    half = spec.model_copy(update={"name": "half"})
    monkeypatch.setenv("AFPE_ORIGIN", "service")
    study = claim_study(storage, half, resume=False, origin=run_origin())
    add_trials(study, half.model_dump(mode="json"), 1)
    failed = make_trial(half.model_dump(mode="json"), {"s_d0": 1.0, "s_d1": 1.0}, None, TrialState.FAIL, {}, 1)
    study.add_trial(failed)
    optuna.create_study(study_name="foreign", storage=storage)


def test_the_list_reads_origin_state_and_answer(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'afpe.db'}"
    write_studies(url, monkeypatch)
    leases = StudyLeases(create_engine(url))
    done, half = list_studies(open_storage(url), leases)
    assert (done.name, done.origin, done.state, done.finished, done.n_trials) == ("done", "cli", "succeeded", 4, 4)
    assert done.answer is not None and done.ratio_axes == ("d1", "d0") and done.error is None
    assert (half.name, half.origin, half.state, half.finished, half.failed) == ("half", "service", "failed", 1, 1)
    assert "1 of 4 trials finished" in half.error
    leases.acquire("half", "afpe-run-elsewhere")
    half = list_studies(open_storage(url), leases)[1]
    assert half.state == "running" and half.holder.startswith("afpe-run-elsewhere (pid ")


def test_afpe_studies_and_status_without_a_name_print_the_list(
    tmp_path: Path, monkeypatch, afpe_executable: str, user_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'afpe.db'}"
    write_studies(url, monkeypatch)
    listed = subprocess.run(
        [afpe_executable, "studies", "--storage", url], env=user_env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    header, done, half = listed.stdout.splitlines()
    assert header.split() == ["name", "origin", "state", "finished", "answer"]
    assert done.split()[:4] == ["done", "cli", "succeeded", "4/4"] and "r2 " in done and "(d1/d0 = " in done
    assert half.split()[:5] == ["half", "service", "failed", "1/4,", "1"]
    status = subprocess.run([afpe_executable, "status", "--storage", url], env=user_env, capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout == listed.stdout


def test_the_json_list_names_every_field_but_the_spec(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'afpe.db'}"
    write_studies(url, monkeypatch)
    entries = [entry_json(e) for e in list_studies(open_storage(url), StudyLeases(create_engine(url)))]
    assert [e["name"] for e in entries] == ["done", "half"] and "spec" not in entries[0]
    assert json.loads(json.dumps(entries))[0]["origin"] == "cli"
