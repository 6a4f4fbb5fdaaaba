"""Issue 27 items 1 and 2 in a real headless Chromium over real HTTP: the study page's header states the
study's answer (mean, CI, n, tied range, smoothed optimum with its scales, the scales to use) with the very
numbers of `afpe status --json`, and a page opened before the first trial ends shows the answer, the counts per
state (FAIL included) and the latest error without a reload."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from afpe.search.storage import open_storage
from afpe.search.testing import quickstart_space
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records

DIST = FloatDistribution(0.1, 3.0, log=True)


def quick_spec(name: str, n_trials: int, repeats: dict | None = None) -> dict:
    """The quickstart's search space (d0, d1 searched, d2 fixed at 1) on its task, as a stored spec."""
    return quickstart_space(name=name, n_trials=n_trials, repeats=repeats)


def r2(d0: float, d1: float, rng: np.random.Generator) -> float:
    """A smooth surface with its best ratio d1/d0 near 2, plus seed noise."""
    return float(0.85 - 0.2 * (math.log10(d1 / d0) - math.log10(2.0)) ** 2 + rng.normal(0, 0.01))


def trial(d0: float, d1: float, value: float | None, **attrs) -> optuna.trial.FrozenTrial:
    state = TrialState.COMPLETE if value is not None else TrialState.FAIL
    return create_trial(
        params={"s_d0": d0, "s_d1": d1},
        distributions={"s_d0": DIST, "s_d1": DIST},
        value=value,
        state=state,
        user_attrs=attrs,
    )


def new_study(url: str, spec: dict) -> optuna.Study:
    study = optuna.create_study(study_name=spec["name"], storage=open_storage(url), direction="maximize")
    study.set_user_attr("spec", spec)
    study.set_user_attr("warnings", [])
    return study


def write_finished_study(url: str) -> None:
    """12 search trials, then the top 3 configurations repeated twice each (as `afpe run` leaves them)."""
    study = new_study(url, quick_spec("answered", 12, {"top_k": 3, "seeds": 2}))
    rng = np.random.default_rng(4)
    for d0, d1 in 10 ** rng.uniform(-1, math.log10(3.0), (12, 2)):
        study.add_trial(trial(float(d0), float(d1), r2(d0, d1, rng), seed=0, pe_seed=0))
    top = sorted(study.trials, key=lambda t: t.value, reverse=True)[:3]
    for best in top:
        for index in (1, 2):
            d0, d1 = best.params["s_d0"], best.params["s_d1"]
            study.add_trial(trial(d0, d1, r2(d0, d1, rng), repeat_of=best.number, repeat=index, pe_seed=1000 * index))


def field(status: dict, path: str):
    """`status`'s value at a dotted path ('best.ci.0', 'optimum.params.s_d0')."""
    value = status
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


HEADER_FIELDS = (
    "[...document.querySelectorAll('#study-header [data-field]')].map(e => [e.dataset.field, e.dataset.value])"
)


def test_the_header_states_the_answer_of_afpe_status(make_settings, serve, browser, afpe_executable):
    settings = make_settings(allowed_hosts=[])
    write_finished_study(settings.storage)
    command = [afpe_executable, "status", "answered", "--storage", settings.storage, "--json"]
    status = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert status["best"]["n"] == 3 and status["optimum"] is not None and status["use"] is not None

    base = serve(create_app(settings))
    browser.goto(f"{base}/studies/answered")
    browser.wait_for("document.getElementById('state').textContent === 'succeeded'")
    shown = dict(browser.run(HEADER_FIELDS))
    expected = {"best.value", "best.n", "best.ratio", "ratio_range.0", "ratio_range.1", "optimum.ratio"}
    expected |= {"optimum.params.s_d0", "optimum.params.s_d1", "fixed.d2", "use.params.s_d0", "use.params.s_d1"}
    expected |= {"best.ci.0", "best.ci.1"} if status["best"]["ci"] else set()
    expected |= {"optimum.ci.0", "optimum.ci.1"} if status["optimum"]["ci"] else set()
    assert expected <= set(shown), sorted(shown)
    for path, value in shown.items():
        assert float(value) == field(status, path), (path, value)
    assert float(shown["best.value"]) == status["best"]["mean"]
    optimum = status["optimum"]
    assert optimum["params"]["s_d1"] / optimum["params"]["s_d0"] == optimum["ratio"]

    text = browser.run("document.getElementById('study-header').innerText")
    best = status["best"]
    assert f"mean of n = 3 runs, 95% CI [{best['ci'][0]:.4g}, {best['ci'][1]:.4g}]" in text, text
    low, high = status["ratio_range"]
    assert f"not distinguishable from it (Welch's t-test, 5 %): [{low:.4g}, {high:.4g}]" in text, text
    assert f"ratio d1/d0 = {optimum['ratio']:.4g}" in text and "d2 = 1 (fixed)" in text, text
    assert f"Scales to use: s_d0 = {status['use']['params']['s_d0']:.4g}" in text, text
    assert "repeats 6 / 6 done" in text and "(COMPLETE 12)" in text, text
    assert browser.run("document.querySelectorAll('button[data-action]').length") == 0, "a succeeded study"


def test_a_page_opened_before_the_first_trial_ends_shows_the_answer_without_a_reload(make_settings, serve, browser):
    settings = make_settings(allowed_hosts=[])
    spec = quick_spec("live", 8)
    study = new_study(settings.storage, spec)
    with open_records(settings.storage).begin() as session:  # running, and no job to ask: the page keeps polling
        session.add(StudyRecord(name="live", spec=spec, source=StudySource.IMPORT, state=StudyState.RUNNING))
    base = serve(create_app(settings))
    browser.goto(f"{base}/studies/live")
    browser.wait_for("document.getElementById('best').textContent.includes('No finished trial yet')")
    browser.run("window.notReloaded = true")

    rng = np.random.default_rng(1)
    for d0, d1 in ((0.2, 0.5), (1.0, 1.0), (0.5, 1.5)):
        study.add_trial(trial(d0, d1, r2(d0, d1, rng)))
    study.add_trial(trial(0.3, 0.3, None, error="RuntimeError: out of <b>memory</b>"))

    browser.wait_for("document.getElementById('best').textContent.includes('Best r2 =')", timeout=30)
    assert browser.run("window.notReloaded") is True
    best = browser.run("document.getElementById('best').textContent")
    assert "interval not estimable: one run (no repeats)" in best, best
    assert browser.run("document.getElementById('counts').textContent") == "3 / 8 trials"
    assert browser.run("document.getElementById('failed').hidden") is False
    assert "COMPLETE 3, FAIL 1" in browser.run("document.getElementById('trial-states').textContent")
    latest = browser.run("document.querySelector('#latest-error span').textContent")
    assert (
        latest == "RuntimeError: out of <b>memory</b>"
        and browser.run("document.querySelector('#latest-error b')") is None
    )
    assert "it needs 6 complete trials, 3 so far" in browser.run("document.getElementById('optimum').textContent")
