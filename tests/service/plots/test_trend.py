"""The trend across studies: the one varying task option found, each study's answer (best ratio with its tied
range, mean with its CI) placed at that option's value, per encoding; and the repeat spread on the ratio plot."""

from __future__ import annotations

import json
import math
import re

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from afpe.search.spec import SearchSpace
from afpe.service.plots.ratio import ratio_data
from afpe.service.plots.trend import trend_data, trend_figure, varying_option

AXES = [
    {"name": "xy", "grid_axes": [0, 1], "low": 0.01, "high": 10},
    {"name": "z", "grid_axes": [2], "low": 0.01, "high": 10},
]
DIST = {"s_xy": FloatDistribution(0.01, 10, log=True), "s_z": FloatDistribution(0.01, 10, log=True)}


def spec(name: str, a: int, encoding: str = "afpe") -> dict:
    return {
        "name": name,
        "task": "synthetic3d",
        "task_options": {"anisotropy": [1, 1, a], "n_train": 256},
        "encoding": encoding,
        "axes": AXES,
        "metric": "val_loss",
        "direction": "minimize",
        "repeats": {"top_k": 2, "seeds": 2},
    }


def trials_peaking_at(best_ratio: float) -> list:
    """Configurations at ratios 1/8 ... 8; loss grows with |log2(ratio / best_ratio)|; the top two repeated."""
    trials, number = [], 0
    for exponent in range(-3, 4):
        params = {"s_xy": 2.0**exponent, "s_z": 1.0}  # ratio s_xy/s_z = 2**exponent
        loss = 0.1 + 0.05 * abs(exponent - math.log2(best_ratio))
        trials.append(create_trial(value=loss, params=params, distributions=DIST))
        number += 1
    ranked = sorted(range(len(trials)), key=lambda i: trials[i].value)[:2]
    for i in ranked:
        for repeat, noise in ((1, 0.004), (2, -0.003)):
            trials.append(
                create_trial(
                    value=trials[i].value + noise,
                    params=trials[i].params,
                    distributions=DIST,
                    user_attrs={"repeat_of": i, "repeat": repeat},
                )
            )
    for n, trial in enumerate(trials):
        trial.number = n
    return trials


def test_the_varying_option_is_found_and_anything_else_is_refused() -> None:
    assert varying_option({"a": spec("a", 1), "b": spec("b", 4)}) == ("task_options.anisotropy.2", {"a": 1, "b": 4})
    with pytest.raises(ValueError, match="exactly one task option"):
        varying_option({"a": spec("a", 1), "b": spec("b", 1)})
    other = spec("c", 4)
    other["task_options"]["n_train"] = 64
    with pytest.raises(ValueError, match="anisotropy.2, task_options.n_train"):
        varying_option({"a": spec("a", 1), "c": other})


def test_each_study_is_placed_at_its_option_with_its_answer() -> None:
    studies = [(f"a{a}", spec(f"a{a}", a), trials_peaking_at(2.0 ** (1 - a.bit_length()))) for a in (1, 2, 4, 8)]
    studies.append(("iso4", spec("iso4", 4, encoding="fourier"), trials_peaking_at(1.0)))
    data = trend_data(studies)
    assert data.option == "task_options.anisotropy.2" and data.metric == "val_loss" and data.differences == []
    afpe = [p for p in data.points if p.encoding == "afpe"]
    assert [p.option_value for p in afpe] == [1, 2, 4, 8]
    assert [p.ratio for p in afpe] == [1.0, 0.5, 0.25, 0.125]  # the configured optimum of each study
    for point in afpe:
        assert point.n == 3 and point.ci_low < point.mean < point.ci_high
        assert point.ratio_low <= point.ratio <= point.ratio_high
        # the smoothed optimum brackets it too (up to rounding), or claims no interval where every draw agrees
        interval = (point.optimum_low, point.optimum_high)
        assert interval == (None, None) or interval[0] * (1 - 1e-9) <= point.ratio <= interval[1] * (1 + 1e-9)
    figure = trend_figure(data)
    names = [trace.name for trace in figure.data]
    smoothed = "smoothed optimum (95% CI)"
    assert names == [
        "afpe: best ratio",
        f"afpe: {smoothed}",
        "afpe: val_loss",
        "fourier: best ratio",
        f"fourier: {smoothed}",
        "fourier: val_loss",
    ]
    with pytest.raises(ValueError, match="at least two"):
        trend_data(studies[:1])


def test_the_ratio_plot_marks_the_best_mean_and_shows_repeat_spread() -> None:
    trials = trials_peaking_at(0.5)
    data = ratio_data(trials, SearchSpace.from_spec(spec("r", 4)))
    assert len(data.repeats) == 2 and all(r.n == 3 and r.low < r.mean < r.high for r in data.repeats)
    assert data.answer.number == 2 and data.answer.x == 0.5  # trial 2 (ratio 1/2) has the best mean
    assert sorted(round(r.x, 3) for r in data.repeats) == [0.25, 0.5]


def test_the_trend_page_leaves_room_around_every_point(client, auth) -> None:
    """The figure the /trend page draws: each y range holds every point and interval end with room to spare (no
    point on the frame below the lowest tick), the ratio axis labelled in ratios."""
    for a in (1, 2, 4):
        lines = ["s_xy,s_z,value,repeat_of,repeat"]
        lines += [f"{2.0**e},1.0,{0.1 + 0.05 * abs(e + a.bit_length() - 1)},," for e in range(-3, 2)]
        lines += [
            f"{2.0 ** (1 - a.bit_length())},1.0,{0.1 + d},{4 - a.bit_length()},{i}" for i, d in ((1, 0.01), (2, -0.01))
        ]
        response = client.post(
            "/api/studies/import",
            files={"file": ("t.csv", "\n".join(lines), "text/csv")},
            data={"name": f"pad-a{a}", "direction": "minimize", "task_options": f'{{"anisotropy": [1, 1, {a}]}}'},
            headers=auth,
        )
        assert response.status_code == 201, response.text
    page = client.get("/trend?names=pad-a1&names=pad-a2&names=pad-a4")
    assert page.status_code == 200, page.text
    figure = json.loads(re.search(r'id="figure-data"[^>]*>(.*?)</script>', page.text, re.S).group(1))
    layout = figure["layout"]
    for axis, log in (("yaxis", True), ("yaxis2", False)):
        traces = [t for t in figure["data"] if t.get("yaxis", "y") == "y" + axis[5:]]
        ends = []
        for trace in traces:
            bars = trace["error_y"]
            ends += [y + up for y, up in zip(trace["y"], bars["array"], strict=True)]
            ends += [y - down for y, down in zip(trace["y"], bars["arrayminus"], strict=True)]
        ends = [math.log10(v) if log else v for v in ends]
        low, high = layout[axis]["range"]
        margin = 0.05 * (max(ends) - min(ends))
        assert low < min(ends) - margin and max(ends) + margin < high, (axis, layout[axis]["range"], ends)
    assert layout["yaxis"]["type"] == "log" and "1/4" in layout["yaxis"]["ticktext"]
