"""The Content-Security-Policy runs no inline script: every page of the real app (a REST study, an imported one,
its trials, a trial, the comparison and trend views, the index, /docs) carries only scripts served by the app
(`src`) and non-executed JSON blocks, and no inline event handler; the scripts are served by name only, as
JavaScript that may be cached; and a real headless Chromium refuses an inline script or handler on a page."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser

from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from afpe.service.app import create_app
from afpe.service.web import dashboard


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes), and the text of each `<script>` element."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_texts: list[str] = []
        self._in_script = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.script_texts.append("")
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_texts[-1] += data


def trend_csv(anisotropy: int) -> str:
    lines = ["s_xy,s_z,value"] + [f"{2.0**e},1.0,{0.1 + 0.05 * abs(e + anisotropy)}" for e in range(-3, 2)]
    return "\n".join(lines)


def store_studies(client: TestClient, auth: dict[str, str], tiny) -> None:
    """A REST study (its page has Cancel and Resume), two imported ones that differ in one task option, and a
    campaign."""
    assert client.post("/api/studies", json=tiny(client, "rest-run"), headers=auth).status_code == 201
    for a in (1, 2):
        response = client.post(
            "/api/studies/import",
            files={"file": ("t.csv", trend_csv(a), "text/csv")},
            data={"name": f"trend-a{a}", "direction": "minimize", "task_options": f'{{"anisotropy": [1, 1, {a}]}}'},
            headers=auth,
        )
        assert response.status_code == 201, response.text
    campaign = {"name": "csp", "base": "quickstart", "vary": {"encoding": ["afpe", "sincos"]}}
    campaign["overrides"] = ["trainer.model.dim=48", "n_trials=2", "data_root=null"]
    assert client.post("/api/campaigns", json=campaign, headers=auth).status_code == 201


# each page route of the app -> a URL of it over the studies stored
PAGES = {
    "/": "/",
    "/docs": "/docs",
    "/studies/{name}": "/studies/rest-run",
    "/studies/{name}/header": "/studies/rest-run/header",
    "/studies/{name}/trials": "/studies/table/trials",
    "/studies/{name}/trials/{number}": "/studies/table/trials/36",
    "/compare": "/compare?names=trend-a1&names=trend-a2",
    "/trend": "/trend?names=trend-a1&names=trend-a2",
    "/campaigns/{name}": "/campaigns/csp",
}


def test_no_page_carries_an_inline_script_or_event_handler(make_settings, auth, jobs, tiny, store_table_study):
    settings = make_settings()
    store_table_study(settings.storage)
    pages = {r.path for r in dashboard.router.routes if isinstance(r, APIRoute) and r.response_class is HTMLResponse}
    assert pages == set(PAGES), "every page route is rendered below"
    with TestClient(create_app(settings, backend=jobs)) as client:
        store_studies(client, auth, tiny)
        sources = set()
        for url in PAGES.values():
            response = client.get(url)
            assert response.status_code == 200, (url, response.text[:500])
            page = Elements(response.text)
            scripts = [attrs for tag, attrs in page.tags if tag == "script"]
            for attrs, text in zip(scripts, page.script_texts, strict=True):
                if attrs.get("type") == "application/json":
                    assert "<" not in text, (url, text[:200])
                    json.loads(text)
                else:
                    assert attrs.get("src", "").startswith("/static/") and not text.strip(), (url, attrs, text[:200])
                    sources.add(attrs["src"])
            handlers = [(tag, name) for tag, attrs in page.tags for name in attrs if name.startswith("on")]
            assert not handlers, (url, handlers)
            assert "javascript:" not in response.text.lower(), url
        assert 'data-action="cancel"' in client.get("/studies/rest-run").text
        page_scripts = sources - {"/static/plotly.min.js"}
        assert {src.split("?v=")[0] for src in page_scripts} == {f"/static/{name}" for name in dashboard.SCRIPTS}
        for src in page_scripts:
            script = client.get(src)
            assert script.status_code == 200 and script.headers["content-type"] == "application/javascript", src
            assert script.headers["cache-control"] == "max-age=31536000, immutable" and script.text.strip(), src
            assert src.endswith(f"?v={hashlib.sha256(script.content).hexdigest()[:16]}"), "a new script, a new URL"
        for wrong in ("/static/nope.js", "/static/..%2Fdashboard.py", "/static/%2E%2E%2Ftemplates%2Fbase.html.jinja"):
            assert client.get(wrong).status_code == 404, wrong


def test_chromium_runs_the_page_scripts_and_refuses_an_inline_one(make_settings, browser, serve):
    base = serve(create_app(make_settings(allowed_hosts=[])))
    browser.goto(f"{base}/")
    assert browser.run("typeof authorizedFetch") == "function", "auth.js ran under the policy"
    browser.run(
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => violations.push(e.effectiveDirective));"
        "const script = document.createElement('script');"
        "script.textContent = 'document.body.dataset.inlineScript = 1';"
        "document.body.append(script);"
        "const image = document.createElement('img');"
        "image.setAttribute('onerror', 'document.body.dataset.inlineHandler = 1');"
        "image.addEventListener('error', () => { window.imageFailed = true; });"
        "image.src = '/no-such-image.png';"
        "document.body.append(image);"
    )
    browser.wait_for("window.imageFailed && violations.length === 2")
    assert sorted(browser.run("violations")) == ["script-src-attr", "script-src-elem"]
    assert browser.run("JSON.stringify(document.body.dataset)") == "{}", "neither inline script ran"
