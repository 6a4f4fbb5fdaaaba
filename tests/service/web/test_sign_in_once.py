"""Sign in once (issue 13) in a real headless Chromium driven over DevTools, over real HTTP: a wrong token is
refused; after one sign-in the start form, Cancel, Resume and the import form (with searched bounds) act with
the token the tab keeps, no page asks for it again, and it never travels in a URL or cookie. The job API is a
fake of Ray's (an external system)."""

from __future__ import annotations

import json

import httpx

from afpe.service.app import create_app
from afpe.service.manager.records import StudyState


class RequestLog:
    """ASGI wrapper noting every request's path and query string."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.requests.append(f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}")
        await self.app(scope, receive, send)


def sign_in(browser, token: str) -> None:
    browser.run(f"document.getElementById('token-input').value = {json.dumps(token)}")
    browser.run("document.getElementById('sign-in').click()")


def test_one_sign_in_then_start_cancel_and_resume_from_the_pages(make_settings, jobs, auth, browser, serve):
    token = auth["Authorization"].split()[1]
    log = RequestLog(create_app(make_settings(allowed_hosts=[]), backend=jobs))
    base = serve(log)
    browser.goto(f"{base}/")
    sign_in(browser, "not-the-token-of-at-least-32-characters")
    browser.wait_for("document.getElementById('sign-in-message').textContent === 'wrong API token'")
    assert browser.run("sessionStorage.length") == 0
    sign_in(browser, token)
    browser.wait_for("!document.getElementById('signed-in').hidden")

    # a generated task: a spec whose data this service lacks is refused at once (422 naming data_root)
    browser.run("document.querySelector('select[name=spec]').value = 'quickstart'")
    browser.run("document.querySelector('textarea[name=overrides]').value = 'name=clicked\\nn_trials=3'")
    browser.run("document.querySelector('#start-form button[type=submit]').click()")
    browser.wait_for(f"location.href === {json.dumps(base + '/studies/clicked')} && document.readyState === 'complete'")
    assert jobs.submissions == [("afpe-clicked-1", False)]
    jobs.move("afpe-clicked-1", StudyState.RUNNING)
    browser.goto(f"{base}/studies/clicked")
    assert browser.run("document.querySelectorAll('input[type=password]').length") == 1, "only the hidden sign-in"
    assert browser.run("document.getElementById('signed-out').hidden")

    browser.run("document.getElementById('cancel').click()")
    browser.wait_for("document.getElementById('state').textContent === 'cancelled'")
    assert jobs.stopped == ["afpe-clicked-1"]
    browser.run("document.getElementById('resume').click()")
    browser.wait_for("document.getElementById('state').textContent === 'queued'")
    assert jobs.submissions[-1] == ("afpe-clicked-2", True)
    assert browser.run("document.getElementById('action-message').textContent") == "resume: done"

    browser.goto(f"{base}/")
    csv = "s_time,s_space,value\n0.2,0.3,0.1\n0.25,0.2,0.2\n0.3,0.25,0.9\n"
    browser.run(
        "const files = new DataTransfer();"
        f"files.items.add(new File([{json.dumps(csv)}], 't.csv', {{type: 'text/csv'}}));"
        "document.querySelector('#import-form [name=file]').files = files.files;"
        "document.querySelector('#import-form [name=name]').value = 'imported-here';"
        """document.querySelector('#import-form [name=bounds]').value = '{"time": [0.1, 1], "space": [0.1, 1]}';"""
        "document.querySelector('#import-form button[type=submit]').click()"
    )
    browser.wait_for(f"location.href === {json.dumps(base + '/studies/imported-here')}")
    imported = httpx.get(f"{base}/api/studies/imported-here").json()
    assert [(a["low"], a["high"]) for a in imported["spec"]["axes"]] == [(0.1, 1), (0.1, 1)]

    assert token not in browser.run("location.href + document.cookie + document.documentElement.outerHTML")
    assert not any(token in request for request in log.requests), log.requests
    assert {"POST /api/studies/clicked/cancel?", "POST /api/studies/clicked/resume?"} <= set(log.requests)
