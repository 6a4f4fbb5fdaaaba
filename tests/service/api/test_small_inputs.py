"""Issue 30 row 12 over the real app and PostgreSQL: a name or metric ending in a newline is not a slug, a
token that is only white space does not start a service, the status of a study does not show where the
service keeps its data, and an import whose rows are all repeats of nothing is refused."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from fastapi.testclient import TestClient

from afpe.service.app import create_app


def import_csv(client, auth, name: str, content: str, **fields):
    files = {"file": ("t.csv", content, "text/csv")}
    return client.post("/api/studies/import", files=files, data={"name": name, **fields}, headers=auth)


def test_a_metric_with_a_trailing_newline_is_refused(client, auth):
    response = import_csv(client, auth, "newline", "s_a,value\n1,0.5\n2,0.6\n", metric="value\n")
    assert response.status_code == 422, response.text
    assert "metric: 'value\\n' must match" in response.json()["error"]


def test_a_token_of_white_space_is_refused_at_start(make_settings, afpe_executable, user_env, tmp_path):
    with pytest.raises(ValueError, match="white space"):
        create_app(make_settings(api_token=" " * 40))
    env = {**user_env, "AFPE_API_TOKEN": " " * 40, "AFPE_STORAGE": f"sqlite:///{tmp_path / 's.db'}"}
    result = subprocess.run([afpe_executable, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "white space" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_status_shows_data_root_relative_to_the_data_dir(make_settings, auth, jobs, tiny, serve):
    settings = make_settings()
    (settings.data_dir / "volumes").mkdir()
    base = serve(create_app(settings, backend=jobs))
    with TestClient(create_app(settings, backend=jobs)) as client:
        spec = tiny(client, "private-paths")
    for name, root, shown in [("private-paths", "volumes", "volumes"), ("default-root", None, ".")]:
        response = httpx.post(f"{base}/api/studies", json={**spec, "name": name, "data_root": root}, headers=auth)
        assert response.status_code == 201, response.text
        for status in (response.json(), httpx.get(f"{base}/api/studies/{name}").json()):
            assert status["spec"]["data_root"] == shown
        assert str(settings.data_dir) not in httpx.get(f"{base}/studies/{name}").text


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("s_a,value,repeat_of\n1,0.5,-5\n2,0.6,99999\n", 2),
        ("s_a,value,repeat_of\n1,0.5,\n2,0.6,1\n", 3),  # a repeat of itself
        ("s_a,value,repeat_of\n1,0.5,\n2,0.6,0\n3,0.7,1\n", 4),  # a repeat of a repeat
    ],
)
def test_a_repeat_of_no_earlier_search_trial_is_refused(client, auth, content, line):
    response = import_csv(client, auth, "repeats", content)
    assert response.status_code == 422, response.text
    assert f"file: line {line}: repeat_of" in response.json()["error"]
    assert client.get("/api/studies/repeats").status_code == 404


def test_repeats_of_earlier_search_trials_are_imported(client, auth):
    response = import_csv(client, auth, "repeated", "s_a,value,repeat_of\n1,0.5,\n2,0.6,\n2,0.7,1\n")
    assert response.status_code == 201, response.text
    status = response.json()
    assert status["finished"] == 2 and status["best"]["number"] == 1 and status["repeats"]["done"] == 1
