"""Issue 14 row 14 and issue 13 item 7 in a real headless Chromium: the study page of a running study polls its
status every 5 s and fetches its plots only when the status's `version` changed (a figure that stayed the same
is answered 304)."""

from __future__ import annotations

import optuna

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials, rows_cols_axes
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records
from afpe.service.plots.kinds import list_plot_kinds

SPEC = {"name": "polled", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc", "n_trials": 60}


class ResponseLog:
    """ASGI wrapper of the app under test that notes (path, status) of every response it sends, and calls
    `before(path)` before the app sees a request."""

    def __init__(self, app, before) -> None:
        self.app = app
        self.before = before
        self.responses: list[tuple[str, int]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.before(scope["path"])

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                self.responses.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noted)


def test_plots_are_fetched_again_only_when_the_study_changed(make_settings, render_dom, serve):
    settings = make_settings(allowed_hosts=[])
    study = optuna.create_study(study_name="polled", storage=open_storage(settings.storage), direction="maximize")
    study.set_user_attr("spec", SPEC)
    study.set_user_attr("warnings", [])
    add_trials(study, SPEC, 40)
    with open_records(settings.storage).begin() as session:  # running, and no job to ask: the page keeps polling
        session.add(StudyRecord(name="polled", spec=SPEC, source=StudySource.IMPORT, state=StudyState.RUNNING))
    polls = []

    def before(path: str) -> None:
        if path == "/api/studies/polled":
            polls.append(path)
            if len(polls) == 2:  # a trial ends between the first and the second poll
                add_trials(study, SPEC, 1, seed=7)

    log = ResponseLog(create_app(settings), before)
    base = serve(log)
    dom = render_dom(f"{base}/studies/polled", budget_ms=17000)
    assert dom.count('class="main-svg"') >= 2 * 5
    assert len(polls) >= 3, log.responses
    plots = [(path.rsplit("/", 1)[1], status) for path, status in log.responses if "/plots/" in path]
    kinds = list_plot_kinds()
    assert sorted(kind for kind, _ in plots) == sorted(kinds * 2), f"each plot once per version: {plots}"
    first, second = plots[: len(kinds)], dict(plots[len(kinds) :])
    assert all(status == 200 for _, status in first), first
    assert second["history"] == second["ratio"] == 200, "a new trial changes these figures"
    assert set(second.values()) <= {200, 304}, second
