"""Issue 14 row 1 (stored XSS) in a real headless Chromium over real HTTP: studies whose stored spec (axis
names, description, metric, task, a task option), warnings and error carry markup, as a CSV import or an
older service could store them, are shown as text on every page (and in the Plotly figures, whose titles
and hover texts render HTML); no script of theirs runs. The import itself now refuses such a column."""

from __future__ import annotations

import httpx
import optuna

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records

RAN = "document.body.dataset.pwned=1"
IMG = f"<img src=x onerror={RAN}>"
SCRIPT = f"<script>{RAN}</script>"
BREAKOUT = f"</script><script>{RAN}</script>"
OPTION = f"k{IMG}"


def store_study(url: str, name: str, option_value: int) -> None:
    """A finished REST study whose every free-text field holds markup, with 30 trials over two axes."""
    spec = {
        "name": name,
        "description": f"about {SCRIPT} {IMG}",
        "task": f"task{IMG}",
        "task_options": {OPTION: option_value},
        "encoding": "afpe",
        "axes": [
            {"name": f"z{IMG}", "grid_axes": [0], "low": 0.1, "high": 4.0},
            {"name": f"xy{BREAKOUT}", "grid_axes": [1], "low": 0.1, "high": 4.0},
        ],
        "n_trials": 30,
        "metric": f"m{IMG}",
        "direction": "maximize",
        "pe_seed": 0,
    }
    study = optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    study.set_user_attr("spec", spec)
    study.set_user_attr("warnings", [f"warning {IMG} {SCRIPT}"])
    add_trials(study, spec, 30)
    with open_records(url).begin() as session:
        session.add(
            StudyRecord(
                name=name,
                spec=spec,
                source=StudySource.REST,
                state=StudyState.FAILED,
                job_id=f"afpe-{name}-1",
                error=f"RuntimeError: {IMG} {BREAKOUT}",
            )
        )


def test_markup_in_stored_studies_is_shown_as_text_and_never_runs(make_settings, auth, render_dom, serve):
    settings = make_settings(allowed_hosts=[])
    for name, value in (("xss-a", 1), ("xss-b", 2)):
        store_study(settings.storage, name, value)
    base = serve(create_app(settings))
    study = render_dom(f"{base}/studies/xss-a", budget_ms=15000)
    assert "&lt;img src=x onerror=" in study, "the error, warnings and spec are shown as text"
    assert study.count('class="main-svg"') >= 2 * 4, "the figures with markup in their titles were drawn"
    pages = {
        "study": study,
        "index": render_dom(f"{base}/", budget_ms=5000),
        "compare": render_dom(f"{base}/compare?names=xss-a&names=xss-b", budget_ms=8000),
        "trend": render_dom(f"{base}/trend?names=xss-a&names=xss-b", budget_ms=8000),
        "docs": render_dom(f"{base}/docs", budget_ms=3000),
    }
    for page, dom in pages.items():
        assert "data-pwned" not in dom, f"script ran on the {page} page"
        assert "<img src=" not in dom, f"an <img> element on the {page} page"
    assert "&lt;img src=x onerror=" in pages["index"] and "main-svg" in pages["compare"]
    assert "main-svg" in pages["trend"], pages["trend"][:3000]
    # the import refuses the column header that used to carry the payload
    response = httpx.post(
        f"{base}/api/studies/import",
        files={"file": ("t.csv", f"s_z{IMG},s_xy,value\n1,2,0.5\n2,1,0.7\n", "text/csv")},
        data={"name": "xss-import"},
        headers=auth,
    )
    assert response.status_code == 422 and "s_z<img" in response.json()["error"], response.text
