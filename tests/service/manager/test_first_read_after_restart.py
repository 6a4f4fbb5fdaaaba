"""Issue 30 row 11: the first reads after a restart read no trial. A service serves a study's status and a plot
and stops; a new one beside it answers the list, the dashboard, the status and the plot the same, from what the
first kept per study version (`derived_store`), with no statement on Optuna's trial params (a cold read of every
trial, 30 s and more at 100,000 trials, selects them all). Real Postgres and HTTP; the statements are those
SQLAlchemy sends."""

from __future__ import annotations

import optuna
import sqlalchemy as sa
from fastapi.testclient import TestClient

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials, rows_cols_axes
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records

SPEC = {"name": "kept", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc", "n_trials": 40}
READS = ("/api/studies", "/", "/api/studies/kept", "/api/studies/kept/plots/ratio")


def test_the_first_reads_after_a_restart_read_no_trial(make_settings, postgres_url: str) -> None:
    study = optuna.create_study(study_name="kept", storage=open_storage(postgres_url), direction="maximize")
    study.set_user_attr("spec", SPEC)
    add_trials(study, SPEC, 40, pruned_every=5)
    with open_records(postgres_url).begin() as session:
        session.add(StudyRecord(name="kept", spec=SPEC, source=StudySource.REST, state=StudyState.SUCCEEDED))
    with TestClient(create_app(make_settings())) as client:
        before = {path: client.get(path) for path in READS[2:]}

    statements: list[str] = []

    def seen(conn, cursor, statement: str, *args) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    try:
        with TestClient(create_app(make_settings())) as client:
            after = {path: client.get(path) for path in READS}
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)
    assert all(response.status_code == 200 for response in after.values())
    assert after["/api/studies/kept"].json() == before["/api/studies/kept"].json()
    assert after[READS[3]].text == before[READS[3]].text and after[READS[3]].headers["etag"]
    assert [s for s in statements if "trial_params" in s] == []
