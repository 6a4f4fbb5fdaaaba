"""Issue 29, item 2 (REST): `POST /api/campaigns` admits a campaign whole (422 naming the study and field, 409 for
a name holding another campaign, 401 without the token), then creates each study as a service study; the campaign's
table, CSV and Markdown read back with the service's states; cancel and resume act on every study. A campaign that
`afpe campaign run` recorded on the same storage is served too. Real Postgres and HTTP; the job API is a fake of
Ray's (an external system)."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from afpe.service.app import create_app

CAMPAIGN = {
    "name": "enc",
    "base": "quickstart",
    "vary": {"encoding": ["afpe", "sincos"], "task_options.lengths": [[0.4, 0.2, 0.3], [0.4, 0.1, 0.3]]},
    "overrides": ["trainer.model.dim=48", "n_trials=3", "trainer.epochs=1", "data_root=null"],
}
NAMES = ["enc-afpe-0p4x0p2x0p3", "enc-afpe-0p4x0p1x0p3", "enc-sincos-0p4x0p2x0p3", "enc-sincos-0p4x0p1x0p3"]


@pytest.fixture
def service(make_settings, jobs):
    with TestClient(create_app(make_settings(), backend=jobs), raise_server_exceptions=False) as client:
        yield client


def test_a_campaign_is_admitted_whole_then_run_as_service_studies(service, auth, jobs) -> None:
    assert service.post("/api/campaigns", json=CAMPAIGN).status_code == 401
    bad = service.post("/api/campaigns", json={**CAMPAIGN, "overrides": ["trainer.model.dim=64"]}, headers=auth)
    assert bad.status_code == 422
    assert "study enc-sincos-0p4x0p2x0p3: trainer.model.dim: sincos needs dim divisible" in bad.text
    too_big = service.post(
        "/api/campaigns", json={**CAMPAIGN, "overrides": [*CAMPAIGN["overrides"], "n_trials=1001"]}, headers=auth
    )
    assert too_big.status_code == 422 and "study enc-afpe-0p4x0p2x0p3: spec: n_trials: 1001 exceeds" in too_big.text
    assert service.get("/api/studies").json() == [] and service.get("/api/campaigns").json() == []

    created = service.post("/api/campaigns", json=CAMPAIGN, headers=auth)
    assert created.status_code == 201, created.text
    table = created.json()
    assert [row["study"] for row in table["studies"]] == NAMES
    assert {row["state"] for row in table["studies"]} == {"queued"} and table["state"] == "running"
    # the running cap (one study per CPU of the 2-CPU head): the first two have a job, the others wait for a slot
    assert [job for job, _ in jobs.submissions] == [f"afpe-{name}-1" for name in NAMES[:2]]
    waiting = service.get(f"/api/studies/{NAMES[3]}").json()
    assert waiting["state"] == "queued" and waiting["note"].startswith("waiting for a slot: 2 of 2 studies run")
    assert [item["name"] for item in service.get("/api/studies").json()] == NAMES
    assert service.get("/api/campaigns").json() == ["enc"]
    assert service.post("/api/campaigns", json=CAMPAIGN, headers=auth).status_code == 200  # the same again
    other = service.post("/api/campaigns", json={**CAMPAIGN, "overrides": CAMPAIGN["overrides"][:-1]}, headers=auth)
    assert other.status_code == 409 and "campaign 'enc' exists with another spec" in other.text

    cancelled = service.post("/api/campaigns/enc/cancel", headers=auth).json()
    assert {row["state"] for row in cancelled["studies"]} == {"cancelled"} and cancelled["state"] == "incomplete"
    resumed = service.post("/api/campaigns/enc/resume", headers=auth).json()
    assert {row["state"] for row in resumed["studies"]} == {"queued"}
    assert sum(resume for _, resume in jobs.submissions) == 2  # submitted again with --resume, within the cap

    assert service.get("/api/campaigns/nope").status_code == 404
    assert service.get("/api/campaigns/enc/export?format=xml").status_code == 422


def test_a_campaign_run_from_the_cli_is_served_with_its_table(service, cli_campaign, postgres_url: str) -> None:
    cli_campaign(postgres_url, CAMPAIGN)
    table = service.get("/api/campaigns/enc").json()
    assert [row["state"] for row in table["studies"]] == ["succeeded", "succeeded", "succeeded", "pending"]
    assert table["state"] == "incomplete" and table["property"] == ["task_options.lengths"]
    afpe = table["studies"][0]
    status = service.get(f"/api/studies/{afpe['study']}").json()
    assert (afpe["mean"], afpe["n"], afpe["ratio"]) == (
        status["best"]["mean"],
        status["best"]["n"],
        status["best"]["ratio"],
    )
    rows = list(csv.DictReader(io.StringIO(service.get("/api/campaigns/enc/export?format=csv").text)))
    assert [r["study"] for r in rows] == NAMES and float(rows[0]["mean"]) == afpe["mean"]
    markdown = service.get("/api/campaigns/enc/export?format=markdown").text
    assert "| task_options.lengths=[0.4, 0.2, 0.3] | afpe − sincos |" in markdown


def test_a_shipped_campaign_is_read_then_posted_with_small_overrides(service, auth, jobs) -> None:
    listed = service.get("/api/campaign-specs").json()
    assert [item["name"] for item in listed] == ["anisotropy", "spacing"] and all("error" not in i for i in listed)
    missing = service.get("/api/campaign-specs/nope")
    assert missing.status_code == 404 and "no shipped campaign 'nope' (shipped: anisotropy, spacing)" in missing.text
    assert service.get("/api/campaign-specs/..%2Fquickstart").status_code in (404, 422)
    body = service.get("/api/campaign-specs/spacing").json()
    assert body["vary"]["trainer.positions"] == ["normalized", "physical"]
    body["overrides"] = ["n_trials=2", "trainer.epochs=1", "task_options.n_train=16"]
    created = service.post("/api/campaigns", json=body, headers=auth)
    assert created.status_code == 201, created.text
    studies = [row["study"] for row in created.json()["studies"]]
    assert len(studies) == 6 and studies[0] == "spacing-normalized-0p8x0p8x0p8"
    assert [job for job, _ in jobs.submissions] == [f"afpe-{name}-1" for name in studies[:2]]  # the running cap
