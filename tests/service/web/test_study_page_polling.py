"""Issue 14 row 14 in a real headless Chromium: the study page of a running study polls its status every
5 s but fetches each plot's figure once; while the study is unchanged the server answers 304."""

from __future__ import annotations

import optuna

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials, rows_cols_axes
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records

SPEC = {"name": "polled", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc", "n_trials": 60}


class ResponseLog:
    """ASGI wrapper of the app under test that notes (path, status) of every response it sends."""

    def __init__(self, app) -> None:
        self.app = app
        self.responses: list[tuple[str, int]] = []

    async def __call__(self, scope, receive, send) -> None:
        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                self.responses.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noted)


def test_unchanged_plots_are_not_sent_again(make_settings, render_dom, serve):
    settings = make_settings(allowed_hosts=[])
    study = optuna.create_study(study_name="polled", storage=open_storage(settings.storage), direction="maximize")
    study.set_user_attr("spec", SPEC)
    study.set_user_attr("warnings", [])
    add_trials(study, SPEC, 40)
    with open_records(settings.storage).begin() as session:  # running, and no job to ask: the page keeps polling
        session.add(StudyRecord(name="polled", spec=SPEC, source=StudySource.IMPORT, state=StudyState.RUNNING))
    log = ResponseLog(create_app(settings))
    base = serve(log)
    dom = render_dom(f"{base}/studies/polled", budget_ms=17000)
    assert dom.count('class="main-svg"') >= 2 * 5
    polls = [status for path, status in log.responses if path == "/api/studies/polled"]
    plots = [(path.rsplit("/", 1)[1], status) for path, status in log.responses if "/plots/" in path]
    assert len(polls) >= 3, log.responses
    sent = [kind for kind, status in plots if status == 200]
    assert sorted(sent) == sorted(set(sent)), f"a figure was sent twice: {plots}"
    assert [status for _, status in plots].count(304) >= len(sent), plots
