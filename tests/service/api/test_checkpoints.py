"""A finished study serves its best checkpoint (`kept_study`, a real search): GET /api/studies/{name}/best/checkpoint
and /trials/{n}/checkpoint stream the kept file, the trial's JSON and page link to it; a pruned trial, a study
without checkpoints and an unknown study get a 404 that says why."""

from __future__ import annotations

from pathlib import Path

import optuna
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from afpe.search import summarize, validate_spec
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records


def test_a_finished_study_serves_its_best_checkpoint(kept_study, make_settings, store_table_study, monkeypatch):
    storage, spec = kept_study
    monkeypatch.delenv("AFPE_ARTIFACT_DIR")
    settings = make_settings(storage=storage)  # checkpoints beside the SQLite file, as `afpe run` kept them
    store_table_study(storage)  # trials written without checkpoints
    with open_records(storage).begin() as session:
        session.add(StudyRecord(name="kept", spec=spec, source=StudySource.REST, state=StudyState.SUCCEEDED))
    study = optuna.load_study(study_name="kept", storage=storage)
    best = summarize(study, validate_spec(spec)).answer.best.number
    folder = Path(make_url(storage).database).with_name("study-artifacts") / "kept"
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/studies/kept/best/checkpoint")
        assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
        assert f'filename="kept-trial-{best}.pt"' in response.headers["content-disposition"]
        assert response.content in {path.read_bytes() for path in folder.iterdir()}

        detail = client.get(f"/api/studies/kept/trials/{best}").json()
        assert detail["checkpoint"] == f"/api/studies/kept/trials/{best}/checkpoint"
        assert client.get(detail["checkpoint"]).content == response.content
        page = client.get(f"/studies/kept/trials/{best}").text
        assert 'id="trial-checkpoint"' in page and f'href="{detail["checkpoint"]}"' in page

        # a COMPLETE trial whose checkpoint was pruned: no artifact attached (Optuna's `artifacts:` system attrs; an
        # enqueued trial, a prior or a repeat, has other system attrs: Optuna's `fixed_params`)
        pruned = next(
            t.number
            for t in study.trials
            if t.state == TrialState.COMPLETE and not any(key.startswith("artifacts:") for key in t.system_attrs)
        )
        assert client.get(f"/api/studies/kept/trials/{pruned}").json()["checkpoint"] is None
        assert 'id="trial-checkpoint"' not in client.get(f"/studies/kept/trials/{pruned}").text
        missing = client.get(f"/api/studies/kept/trials/{pruned}/checkpoint")
        assert missing.status_code == 404 and "has no kept checkpoint" in missing.json()["error"]
        none = client.get("/api/studies/table/best/checkpoint")
        assert none.status_code == 404 and "has no kept checkpoint" in none.json()["error"]
        assert client.get("/api/studies/nope/best/checkpoint").status_code == 404
        assert client.get("/api/studies/kept/trials/99/checkpoint").status_code == 404
