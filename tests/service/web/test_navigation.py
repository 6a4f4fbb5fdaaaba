"""Issue 27 item 4: actions only where they apply, pages (not JSON) for a browser's unknown study and for compare
or trend without names while API callers keep their JSON, and links between the index, compare and trend."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from afpe.service.app import create_app
from afpe.service.jobs.backend import submission_id
from afpe.service.manager.records import StudyRecord, StudyState, open_records

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_actions_show_only_where_they_apply(make_settings, jobs, store_table_study, tiny, auth) -> None:
    settings = make_settings()
    store_table_study(settings.storage)  # imported, succeeded: neither
    with TestClient(create_app(settings, backend=jobs)) as client:
        assert "data-action" not in client.get("/studies/table").text
        assert client.post("/api/studies", json=tiny(client, "acted"), headers=auth).status_code == 201
        job = submission_id("acted", 1)
        for state, shown in (
            (StudyState.RUNNING, ["cancel"]),
            (StudyState.FAILED, ["resume"]),
            (StudyState.CANCELLED, ["resume"]),
            (StudyState.SUCCEEDED, []),
        ):
            jobs.move(job, state)  # the job agrees with the record: the reconciler leaves it
            with open_records(settings.storage).begin() as session:
                session.get(StudyRecord, "acted").state = state
            header = client.get("/studies/acted/header").text
            assert [a for a in ("cancel", "resume") if f'data-action="{a}"' in header] == shown, state


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/studies/nope", 404, "no study"),
        ("/studies/nope/header", 404, "no study"),
        ("/compare", 422, "names: a comparison needs at least 1 study name"),
        ("/trend", 422, "names: a trend needs at least 2 study name"),
        ("/trend?names=one", 422, "names: a trend needs at least 2 study name"),
    ],
)
def test_a_browser_gets_a_page_and_an_api_caller_json(client, path: str, status: int, says: str) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == status and page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert says in page.text and 'href="/"' in page.text and "<h1>" in page.text
    data = client.get(path, headers={"Accept": "application/json"})
    assert data.status_code == status and says in data.json()["error"]
    api = client.get("/api/studies/nope", headers=HTML)  # under /api/: JSON whatever the Accept
    assert api.status_code == 404 and "no study" in api.json()["error"]


def test_index_compare_and_trend_link_each_other(client, auth) -> None:
    for a in (1, 2):
        csv = "s_xy,s_z,value\n" + "\n".join(f"{2.0**e},1.0,{0.1 + 0.05 * abs(e + a)}" for e in range(-3, 2))
        response = client.post(
            "/api/studies/import",
            files={"file": ("t.csv", csv, "text/csv")},
            data={"name": f"nav-a{a}", "direction": "minimize", "task_options": f'{{"anisotropy": [1, 1, {a}]}}'},
            headers=auth,
        )
        assert response.status_code == 201, response.text
    index = client.get("/").text
    assert 'formaction="/trend"' in index and 'action="/compare"' in index
    compare = client.get("/compare?names=nav-a1&names=nav-a2").text
    assert 'href="/trend?names=nav-a1&amp;names=nav-a2"' in compare and 'href="/"' in compare
    trend = client.get("/trend?names=nav-a1&names=nav-a2").text
    assert 'href="/compare?names=nav-a1&amp;names=nav-a2"' in trend
