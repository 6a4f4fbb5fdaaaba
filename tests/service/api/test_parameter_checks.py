"""Issue 30 row 6 over a real server and PostgreSQL: every path and query parameter is range- and
character-checked (422, never a 500 from the database or the file system), nested JSON is bounded before it
is parsed, and a refused import stores nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from afpe.service.api.json_depth import MAX_JSON_DEPTH, json_depth
from afpe.service.app import create_app

CSV = "s_xy,s_z,value\n1,2,0.5\n2,1,0.7\n"


@pytest.fixture
def base(make_settings, serve, auth) -> str:
    url = serve(create_app(make_settings()))
    files = {"file": ("t.csv", CSV, "text/csv")}
    response = httpx.post(f"{url}/api/studies/import", files=files, data={"name": "q"}, headers=auth)
    assert response.status_code == 201, response.text
    return url


@pytest.mark.parametrize(
    "path",
    [
        "/api/studies/q/trials/99999999999",
        "/api/studies/q/trials/99999999999/checkpoint",
        "/studies/q/trials/99999999999",
        "/api/studies/q/trials/-1",
        "/api/studies/x%00",
        "/api/studies/x%00/trials",
        "/api/studies/x%00/plots/ratio",
        "/studies/x%00",
        "/studies/x%00/trials",
        "/trend?names=a%00&names=b",
        "/compare?names=a%00",
        "/api/compare?names=a%00",
        "/api/trend?names=a%00&names=q",
    ],
)
def test_out_of_range_or_odd_characters_are_422(base, path):
    response = httpx.get(base + path)
    assert response.status_code == 422, (path, response.status_code, response.text[:300])


def test_names_and_numbers_in_range_are_still_answered(base):
    assert httpx.get(f"{base}/api/studies/q/trials/1").json()["number"] == 1
    assert httpx.get(f"{base}/api/studies/q/trials/2147483647").status_code == 404
    assert httpx.get(f"{base}/studies/q/trials/0").status_code == 200
    assert httpx.get(f"{base}/api/studies/unknown").status_code == 404


@pytest.mark.parametrize("depth", [500, 1990])
def test_deeply_nested_task_options_are_refused_and_nothing_is_stored(base, auth, depth):
    options = '{"a": ' + "[" * depth + "]" * depth + "}"  # within the field's 4000 characters
    files = {"file": ("t.csv", CSV, "text/csv")}
    data = {"name": "deep", "task_options": options}
    response = httpx.post(f"{base}/api/studies/import", files=files, data=data, headers=auth)
    assert response.status_code == 422, response.text[:300]
    assert f"task_options: nested deeper than {MAX_JSON_DEPTH} levels" in response.json()["error"]
    assert httpx.get(f"{base}/api/studies/deep").status_code == 404
    again = httpx.post(f"{base}/api/studies/import", files=files, data={"name": "deep"}, headers=auth)
    assert again.status_code == 201, again.text  # no Optuna study was left behind under the name


def test_a_deeply_nested_spec_body_is_a_4xx(base, auth):
    spec = {"name": "deep-spec", "task_options": json.loads("[" * 200 + "]" * 200)}
    body = json.dumps(spec)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    response = httpx.post(f"{base}/api/studies", content=body, headers={**auth, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:300]


def test_json_depth_counts_brackets_outside_strings():
    assert json_depth('{"a": [1, {"b": "[[[{"}]}') == 3
    assert json_depth('"\\"[[["') == 0 and json_depth("1") == 0
    assert json_depth("[" * 100_000 + "]" * 100_000) == 100_000
