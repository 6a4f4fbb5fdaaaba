"""Storage on real SQLite and PostgreSQL: URLs and passwords, one spec per study name, stale trials,
summaries, exports and the status CLI."""

from __future__ import annotations

import csv
import io
import json
import threading

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from afpe.search import summarize, validate_spec
from afpe.search.export import export_text
from afpe.search.storage import StudyConflictError, claim_study, open_storage, public_url, split_password
from afpe.search.testing import rows_cols_axes
from afpe.search.trial_writes import fail_stale_trials
from afpe.service.cli import main

SPEC = {
    "name": "owned",
    "task": "synthetic2d",
    "axes": rows_cols_axes(0.1, 10),
    "n_trials": 3,
}


def with_password(url: str, password: str) -> str:
    return url.replace("postgres@", f"postgres:{password}@")


def test_password_is_split_off_and_never_printed(postgres_url: str) -> None:
    url = with_password(postgres_url, "pw-do-not-leak")
    safe, password = split_password(url)
    assert password == "pw-do-not-leak" and "pw-do-not-leak" not in safe
    assert "pw-do-not-leak" not in public_url(url)
    assert public_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    storage = open_storage(url)  # trust auth: the password is sent through connect_args only
    assert "pw-do-not-leak" not in storage.url
    with pytest.raises(ValueError, match="storage: unsupported database"):
        open_storage("mysql://x@h/db")
    with pytest.raises(ValueError, match="storage: cannot connect to postgresql"):
        open_storage("postgresql://postgres@127.0.0.1:1/none")


def test_schema_created_concurrently_by_two_processes_worth_of_threads(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def create() -> None:
        try:
            open_storage(postgres_url)
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_study_name_belongs_to_one_spec(storage_url: str) -> None:
    storage = open_storage(storage_url)
    spec = validate_spec(SPEC)
    study = claim_study(storage, spec, resume=False)
    assert study.user_attrs["spec"]["name"] == "owned" and study.user_attrs["warnings"] == []
    study.ask({"s_rows": FloatDistribution(0.1, 10, log=True)})  # now it has a trial
    with pytest.raises(StudyConflictError, match="encoding: stored 'afpe', given 'lfpe'"):
        claim_study(storage, validate_spec({**SPEC, "encoding": "lfpe"}), resume=True)
    with pytest.raises(StudyConflictError, match="axes"):
        claim_study(storage, validate_spec({**SPEC, "axes": SPEC["axes"][:1]}), resume=True)
    with pytest.raises(StudyConflictError, match="pass --resume"):
        claim_study(storage, spec, resume=False)
    more = validate_spec({**SPEC, "n_trials": 9})
    assert claim_study(storage, more, resume=True).user_attrs["spec"]["n_trials"] == 9
    optuna.create_study(study_name="foreign", storage=storage)
    with pytest.raises(StudyConflictError, match="not made by afpe"):
        claim_study(storage, validate_spec({**SPEC, "name": "foreign"}), resume=True)


def test_stale_running_trials_are_failed(storage_url: str) -> None:
    storage = open_storage(storage_url)
    study = claim_study(storage, validate_spec(SPEC), resume=False)
    study.ask({"s_rows": FloatDistribution(0.1, 10, log=True)})
    assert fail_stale_trials(study) == 1
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and "driver" in trial.user_attrs["error"]


def test_summary_export_and_status_of_a_recorded_study(storage_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    storage = open_storage(storage_url)
    spec = validate_spec(SPEC)
    study = claim_study(storage, spec, resume=False)
    distributions = {"s_rows": FloatDistribution(0.1, 10, log=True), "s_cols": FloatDistribution(0.1, 10, log=True)}
    outcomes = [(0.7, TrialState.COMPLETE), (0.6, TrialState.PRUNED), (None, TrialState.FAIL)]
    for value, state in outcomes:
        trial = study.ask(distributions)
        trial.set_user_attr("encoding", "afpe")
        trial.report(value if value is not None else 0.1, step=1)
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    summary = summarize(study)
    assert summary.states["COMPLETE"] == 1 and summary.finished == 2 and summary.best_value == 0.7
    assert summary.best_ratio == pytest.approx(study.trials[0].params["s_rows"] / study.trials[0].params["s_cols"])
    rows = list(csv.DictReader(io.StringIO(export_text(study, "csv"))))
    assert [row["state"] for row in rows] == ["COMPLETE", "PRUNED", "FAIL"]
    assert {"number", "value", "s_rows", "s_cols", "encoding"} <= set(rows[0])
    records = json.loads(export_text(study, "json"))
    assert records[1]["intermediate"] == {"1": 0.6}
    assert main(["status", "owned", "--storage", storage_url]) == 0
    out = capsys.readouterr().out
    assert "2/3 finished" in out and "s_rows/s_cols" in out
    assert main(["status", "nope", "--storage", storage_url]) == 2
    assert "owned" in capsys.readouterr().err
