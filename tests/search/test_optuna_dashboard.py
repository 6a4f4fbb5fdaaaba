"""Issue 13 item 6: a study database of this project is a plain Optuna RDB storage (beside it only this project's
own tables): optuna-dashboard, run as its users run it (its command on the storage URL), lists and opens a study
written the way `afpe run` and the CSV import write them, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from afpe.search.lease import StudyLeases
from afpe.search.spec_loading import validate_spec
from afpe.search.storage import claim_study, create_engine, open_storage
from afpe.search.testing import add_trials, make_trial, tiny_synthetic2d
from afpe.search.trial_writes import add_finished_trials
from afpe.service.cluster.topology import free_port

DASHBOARD = Path(sys.executable).with_name("optuna-dashboard")


def test_optuna_dashboard_lists_and_opens_a_study_this_project_wrote(storage_url: str) -> None:
    spec_dict = tiny_synthetic2d(name="for-the-dashboard")
    study = claim_study(open_storage(storage_url), validate_spec(spec_dict), resume=False)
    add_trials(study, spec_dict, 12, pruned_every=4)  # as the search records them (params s_rows, s_cols)
    imported = make_trial(spec_dict, {"s_rows": 1.0, "s_cols": 2.0}, 0.5, study.trials[0].state, {1: 0.5}, 12)
    add_finished_trials(study, [imported])  # as the CSV import writes them (one bulk insert)
    StudyLeases(create_engine(storage_url)).acquire("for-the-dashboard", "afpe-run-test")  # our tables beside

    port = free_port()
    command = [str(DASHBOARD), storage_url, "--host", "127.0.0.1", "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as dashboard:
        try:
            deadline, listed = time.monotonic() + 60, None
            while listed is None:
                assert dashboard.poll() is None, dashboard.stderr.read()
                assert time.monotonic() < deadline, "optuna-dashboard did not answer"
                try:
                    listed = httpx.get(f"http://127.0.0.1:{port}/api/studies", timeout=10).json()["study_summaries"]
                except httpx.TransportError:
                    time.sleep(0.5)
            (summary,) = [s for s in listed if s["study_name"] == "for-the-dashboard"]
            opened = httpx.get(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=30)
            assert opened.status_code == 200, opened.text
            detail = opened.json()
        finally:
            dashboard.terminate()
    assert [trial["number"] for trial in detail["trials"]] == list(range(13))
    assert {trial["state"] for trial in detail["trials"]} == {"Complete", "Pruned"}
    assert {param["name"] for param in detail["trials"][0]["params"]} == {"s_rows", "s_cols"}
    assert detail["trials"][0]["intermediate_values"], "learning curves are shown"
