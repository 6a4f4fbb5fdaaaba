"""POST /api/studies/import with the searched `bounds` (issue 13) over the real app and PostgreSQL: the
stored axes take the bounds, the boundary warnings judge the best against them, and bad bounds are 422s
naming the field.

The issue's EchoNet example (both scales searched on [0.1, 1.0], observed [0.104, 0.932], best time/space
ratio 7.06): its ratio lies in the upper 10 % of the searched range [0.1, 10], and is warned about against
that range; without the bounds it is warned about against the observed range [0.1116, 8.962] (an observed
range inside the searched one only makes the best look closer to an edge, so it warns as well)."""

from __future__ import annotations

import math
import random

import pytest

BOUNDS = '{"time": [0.1, 1.0], "space": [0.1, 1.0]}'


def echonet_csv() -> str:
    """46 trials over (time, space), each axis observed on [0.104, 0.932]; the best at 0.734 / 0.104 = 7.06."""
    rng = random.Random(0)
    rows = [(0.104, 0.932, 0.60), (0.932, 0.5, 0.70), (0.3, 0.104, 0.75), (0.5, 0.932, 0.62), (0.734, 0.104, 0.90)]
    while len(rows) < 46:
        time, space = (math.exp(rng.uniform(math.log(0.104), math.log(0.932))) for _ in range(2))
        rows.append((time, space, 0.5 + 0.3 * rng.random()))
    return "s_time,s_space,value\n" + "\n".join(f"{t},{s},{v}" for t, s, v in rows)


def import_csv(client, auth, name: str, content: str, **fields):
    files = {"file": ("t.csv", content, "text/csv")}
    return client.post("/api/studies/import", files=files, data={"name": name, **fields}, headers=auth)


def ratio_warning(status: dict) -> str:
    return next(w for w in status["warnings"] if w.startswith("best s_time/s_space="))


def test_bounds_are_the_searched_range_the_warnings_judge_by(client, auth):
    with_bounds = import_csv(client, auth, "echonet-bounds", echonet_csv(), bounds=BOUNDS)
    assert with_bounds.status_code == 201, with_bounds.text
    status = with_bounds.json()
    assert [(a["low"], a["high"]) for a in status["spec"]["axes"]] == [(0.1, 1.0), (0.1, 1.0)]
    assert status["best"]["ratio"] == pytest.approx(0.734 / 0.104)
    assert "upper 10% of its range [0.1, 10]" in ratio_warning(status)

    observed = import_csv(client, auth, "echonet-observed", echonet_csv()).json()
    assert [(a["low"], a["high"]) for a in observed["spec"]["axes"]] == [(0.104, 0.932), (0.104, 0.932)]
    assert "upper 10% of its range [0.1116, 8.962]" in ratio_warning(observed)

    # a best at the edge of what was observed but well inside what was searched is no longer warned about
    content = "s_time,s_space,value\n0.2,0.3,0.1\n0.25,0.2,0.2\n0.3,0.25,0.9\n"
    edge = import_csv(client, auth, "inside", content).json()
    inside = import_csv(client, auth, "inside-bounds", content, bounds=BOUNDS).json()
    assert edge["warnings"] and inside["warnings"] == []


@pytest.mark.parametrize(
    ("bounds", "complaint"),
    [
        ('{"depth": [0.1, 1]}', "'depth' is not an axis"),
        ('{"time": [1.0, 0.1]}', "0 < low < high"),
        ('{"time": [0, 1.0]}', "0 < low < high"),
        ('{"time": [0.1, Infinity]}', "finite"),
        ('{"time": [0.1, "1"]}', "finite"),
        ('{"time": [0.1]}', "[low, high]"),
        ('{"time": [0.5, 1.0]}', "are not inside"),
        ("[0.1, 1]", "expected a JSON object"),
        ("{time", "not JSON"),
    ],
)
def test_bad_bounds_are_refused_naming_the_field(client, auth, bounds, complaint):
    response = import_csv(client, auth, "bad", echonet_csv(), bounds=bounds)
    assert response.status_code == 422 and response.json()["error"].startswith("bounds:"), response.text
    assert complaint in response.json()["error"]
    assert client.get("/api/studies/bad").status_code == 404
