"""Issue 27 item 3 through the plot endpoint's figure JSON of a study stored in the service's database (real
Postgres, real app): the ratio plot reads in ratios on a log axis, names every band and marker, stars the answer
(the best mean over repeats) apart from the single best run and draws the spec's prediction; the similarity map
lies on the study's own token grid; contour cells hold their trials; an empty plot says why; importance equals
Optuna's own `get_param_importances` over the trials it names."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from afpe.search import validate_spec
from afpe.search.shipped_specs import spec_path
from afpe.search.spec_loading import load_spec
from afpe.search.storage import open_storage
from afpe.search.testing import make_trial
from afpe.service.app import create_app
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records


def quickstart_spec(name: str) -> dict:
    """The shipped quickstart (8 x 8 x 1 tokens, ratio s_d1/s_d0 over 1/30 .. 30, predicted ratio 2) renamed."""
    spec = load_spec(spec_path("quickstart")).model_dump(mode="json")
    return validate_spec({**spec, "name": name}).model_dump(mode="json")


def r2_at(ratio: float) -> float:
    """A landscape over the log ratio peaking at 2."""
    return 0.9 - 0.05 * (math.log2(ratio) - 1.0) ** 2


def store(url: str, spec: dict, trials: list[optuna.trial.FrozenTrial]) -> None:
    """The study in the service's database as `afpe run` leaves it: the Optuna study with its spec, its record."""
    study = optuna.create_study(study_name=spec["name"], storage=open_storage(url), direction=spec["direction"])
    study.set_user_attr("spec", spec)
    study.set_user_attr("warnings", [])
    study.add_trials(trials)
    with open_records(url).begin() as session:
        session.add(StudyRecord(name=spec["name"], spec=spec, source=StudySource.IMPORT, state=StudyState.SUCCEEDED))


def repeated_study(spec: dict) -> list[optuna.trial.FrozenTrial]:
    """16 search trials over d1/d0 ratios 1/16 .. 16 (s_d0 * s_d1 = 0.3), then 2 repeats each of trials 0 and 1: trial 0
    is the single best run (ratio 2, a lucky 0.99) but its repeats fall to 0.70; trial 1 (ratio 4) holds 0.85 ±
    0.005 and so has the best mean: the answer."""
    ratios = [2.0, 4.0] + [2.0 ** (k / 2) for k in range(-8, 9) if k not in (2, 4)][:14]
    trials = []
    for number, ratio in enumerate(ratios):
        value = {0: 0.99, 1: 0.85}.get(number, r2_at(ratio) - 0.1)
        params = {"s_d0": 0.55 / math.sqrt(ratio), "s_d1": 0.55 * math.sqrt(ratio)}
        trials.append(make_trial(spec, params, value, number=number))
    number = len(trials)
    for of, values in ((0, (0.70, 0.71)), (1, (0.845, 0.855))):
        for repeat, value in enumerate(values, start=1):
            trial = make_trial(spec, dict(trials[of].params), value, number=number)
            trial.user_attrs.update(repeat_of=of, repeat=repeat)
            trials.append(trial)
            number += 1
    return trials


def figure_of(client, name: str, kind: str) -> dict:
    response = client.get(f"/api/studies/{name}/plots/{kind}")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_ratio_plot_reads_in_ratios_and_stars_the_answer(client, postgres_url) -> None:
    spec = quickstart_spec("readable")
    store(postgres_url, spec, repeated_study(spec))
    best = client.get("/api/studies/readable").json()["best"]
    figure = figure_of(client, "readable", "ratio")
    layout, traces = figure["layout"], {t.get("name"): t for t in figure["data"]}

    axis = layout["xaxis"]
    assert axis["type"] == "log" and axis["title"]["text"] == "scale ratio s_d1 / s_d0 (log axis)"
    assert axis["ticktext"] == ["1/32", "1/16", "1/8", "1/4", "1/2", "1", "2", "4", "8", "16", "32"]
    assert axis["tickvals"] == [2.0**k for k in range(-5, 6)]
    # the searched range 1/30 .. 30 is shaded, and the axis reaches past it on both sides
    shapes = {s["name"]: s for s in layout["shapes"]}
    searched = shapes["searched range 1/30 to 30"]
    assert (searched["x0"], searched["x1"]) == pytest.approx((1 / 30, 30))
    assert axis["range"][0] < math.log10(1 / 30) and axis["range"][1] > math.log10(30)
    assert all(s["showlegend"] for s in layout["shapes"])
    assert any(name.startswith("smoothed optimum") for name in shapes)
    prediction = shapes["predicted l0 / l1 = 2 (ratio 2)"]
    assert prediction["x0"] == prediction["x1"] == 2.0

    # the star: the answer's configuration (trial 1, ratio 4) at its mean over 3 runs, as the status says
    assert best["number"] == 1 and best["n"] == 3
    star = next(t for name, t in traces.items() if (name or "").startswith("answer: best mean of 3 runs"))
    assert star["marker"]["symbol"] == "star"
    assert star["x"] == [pytest.approx(best["ratio"])] and star["y"] == [pytest.approx(best["mean"])]
    # the single best run (trial 0, ratio 2, 0.99) is a marker of its own
    single = traces["best single run (trial 0)"]
    assert single["x"] == [pytest.approx(2.0)] and single["y"] == [0.99]
    assert {"trials (runs)", "binned mean", "binned mean ± 1 sd", "repeated configuration: mean, 95% CI"} <= set(traces)
    # the per-scale plot stars the same answer at the same mean, not trial 1's single value
    axes = [t for t in figure_of(client, "readable", "axes")["data"] if t["name"] == "answer: best mean of 3 runs"]
    assert [(t["x"], t["y"]) for t in axes] == [
        ([pytest.approx(best["params"]["s_d0"])], [pytest.approx(best["mean"])]),
        ([pytest.approx(best["params"]["s_d1"])], [pytest.approx(best["mean"])]),
    ]


def test_the_similarity_map_lies_on_the_study_token_grid(client, postgres_url) -> None:
    spec = quickstart_spec("grid")
    store(postgres_url, spec, repeated_study(spec))
    figure = figure_of(client, "grid", "similarity")
    maps = [t for t in figure["data"] if t["type"] == "heatmap"]
    assert len(maps) == 2
    for heatmap in maps:  # an 8 x 8 x 1 study: its 8 x 8 plane of tokens, not a 16 x 16 display grid
        assert len(heatmap["z"]) == 8 and all(len(row) == 8 for row in heatmap["z"])
        assert heatmap["x"] == heatmap["y"] == list(range(8))
    assert figure["layout"]["yaxis"]["title"]["text"] == "d0 (token; scale s_d0)"
    assert figure["layout"]["xaxis"]["title"]["text"] == "d1 (token; scale s_d1)"
    assert "on the study's 8 × 8 × 1 token grid" in figure["layout"]["title"]["text"]


def test_contour_cells_hold_their_trials(client, postgres_url) -> None:
    spec = quickstart_spec("cells")
    trials = repeated_study(spec)
    for trial, s_d0 in zip(trials, [0.1 * 30 ** (i / 19) for i in range(20)], strict=True):
        trial.params["s_d0"] = s_d0  # spread over both axes
    store(postgres_url, spec, trials)
    figure = figure_of(client, "cells", "contour")
    heatmap, points = figure["data"]
    x_edges, y_edges, z = heatmap["x"], heatmap["y"], heatmap["z"]
    assert len(x_edges) == len(z[0]) + 1 and len(y_edges) == len(z) + 1, "edges, not centres"
    assert x_edges[0] == pytest.approx(0.1) and x_edges[-1] == pytest.approx(3.0)
    for x, y in zip(points["x"], points["y"], strict=True):
        column = max(i for i, edge in enumerate(x_edges[:-1]) if edge <= x)
        row = max(i for i, edge in enumerate(y_edges[:-1]) if edge <= y)
        assert z[row][column] is not None, (x, y)
    for axis in ("xaxis", "yaxis"):  # exactly the searched range: no tick beyond it
        assert figure["layout"][axis]["range"] == pytest.approx([-1.0, math.log10(3.0)])


def test_an_empty_plot_says_why(client, postgres_url) -> None:
    store(postgres_url, quickstart_spec("empty"), [])
    for kind, reason in (
        ("ratio", "no COMPLETE trial yet"),
        ("axes", "no COMPLETE trial yet"),
        ("contour", "no COMPLETE trial yet"),
        ("history", "no COMPLETE trial yet"),
        ("intermediate", "no trial has reported an epoch yet"),
    ):
        figure = figure_of(client, "empty", kind)
        assert figure["data"] == [], kind
        assert figure["layout"]["xaxis"]["visible"] is False and figure["layout"]["yaxis"]["visible"] is False
        assert [a["text"] for a in figure["layout"]["annotations"]][0].startswith(reason), kind
    for kind, reason in (("similarity", "no finished trial yet"), ("timeline", "no trial has started yet")):
        response = client.get(f"/api/studies/empty/plots/{kind}")
        assert response.status_code == 409 and reason in response.json()["error"], response.text


def test_importance_names_its_method_and_equals_optunas(client, postgres_url) -> None:
    spec = quickstart_spec("importance")
    trials = repeated_study(spec)
    trials.append(make_trial(spec, {"s_d0": 0.2, "s_d1": 0.4}, None, TrialState.FAIL, number=len(trials)))
    store(postgres_url, spec, trials)
    figure = figure_of(client, "importance", "importance")
    assert figure["layout"]["title"]["text"].startswith("Scale importance for r2: PED-ANOVA over 16 COMPLETE search")
    bars = dict(zip(figure["data"][0]["y"], figure["data"][0]["x"], strict=True))

    # Optuna's own answer over the same 16 trials (the COMPLETE search trials: no repeat, no FAIL)
    searched = [t for t in trials if t.state == TrialState.COMPLETE and "repeat_of" not in t.user_attrs]
    assert len(searched) == 16
    study = optuna.create_study(direction="maximize")
    study.add_trials(searched)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    expected = optuna.importance.get_param_importances(study, evaluator=evaluator)
    assert bars == pytest.approx(dict(expected)) and set(bars) == {"s_d0", "s_d1"}


def test_the_study_page_of_an_empty_study_says_why_each_plot_is_empty(make_settings, postgres_url, serve, render_dom):
    """In headless Chromium: every plot of a study without trials shows its reason, none draws empty axes."""
    store(postgres_url, quickstart_spec("blank"), [])
    dom = render_dom(f"{serve(create_app(make_settings()))}/studies/blank", budget_ms=10000)
    for kind in ("ratio", "axes", "contour", "history"):
        block = dom.split(f'id="plot-{kind}"', 1)[1].split('id="plot-', 1)[0]
        assert "no COMPLETE trial yet" in block and 'class="xtick"' not in block, kind
    assert "no trial has reported an epoch yet" in dom.split('id="plot-intermediate"', 1)[1]
