"""Issue 14 row 6: a CSV import is validated by the rules of a spec (slug axis names, at most 8 axes, a known
task with its options and one of its metrics) and runs without holding up the service: a create sent while
a 20,000-row import is being written is answered before the import is."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from afpe.service.app import create_app
from afpe.trainers import task_info


def import_csv(client, auth, name: str, content: str, **fields):
    return client.post(
        "/api/studies/import",
        files={"file": ("t.csv", content, "text/csv")},
        data={"name": name, **fields},
        headers=auth,
    )


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        ("s_Z Axis,value\n1,0.5\n", {}, "column 's_Z Axis': name: String should match pattern"),
        (",".join(f"s_a{i}" for i in range(9)) + ",value\n" + "1," * 9 + "0.5\n", {}, "at most 8 axes"),
        ("s_a,value\n1,0.5\n", {"task": "free text"}, "task: unknown task 'free text'"),
        ("s_a,value\n1,0.5\n", {"task": "synthetic3d", "metric": "r2"}, "metric: synthetic3d reports"),
        ("s_a,value\n1,0.5\n", {"task": "synthetic3d", "task_options": '{"size": 1}'}, "task_options:"),
        ("s_a,value\n1,0.5\n", {"metric": "<b>loss</b>"}, "metric: '<b>loss</b>' must match"),
        ("s_a,value\n20000,0.5\n", {}, "less than or equal to 10000"),
    ],
)
def test_imports_follow_the_rules_of_a_spec(client, auth, content, fields, message):
    response = import_csv(client, auth, "refused", content, **fields)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    assert client.get("/api/studies/refused").status_code == 404


def test_a_task_gives_the_default_metric(client, auth):
    response = import_csv(client, auth, "with-task", "s_xy,s_z,value\n1,2,0.5\n2,1,0.7\n", task="synthetic3d")
    assert response.status_code == 201, response.text
    default = task_info("synthetic3d").default_metric
    assert response.json()["metric"] == default and response.json()["spec"]["task"] == "synthetic3d"
    plain = import_csv(client, auth, "without-task", "s_xy,s_z,value\n1,2,0.5\n2,1,0.7\n").json()
    assert plain["metric"] == "value" and plain["spec"]["task"] == "imported"


def test_a_create_is_answered_while_a_large_import_runs(make_settings, auth, serve):
    base = serve(create_app(make_settings()))
    rows = "\n".join(f"{1 + i % 50},{1 + i % 7},{i % 13 / 13},{i}" for i in range(20_000))
    finished: list[str] = []

    def big_import() -> None:
        response = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", "s_xy,s_z,value,seed\n" + rows, "text/csv")},
            data={"name": "big"},
            headers=auth,
            timeout=600,
        )
        assert response.status_code == 201, response.text
        finished.append("import")

    thread = threading.Thread(target=big_import)
    thread.start()
    time.sleep(1.0)  # the 20,000 rows are sent; parsing and writing them takes the server seconds
    try:
        small = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", "s_xy,s_z,value\n1,2,0.5\n", "text/csv")},
            data={"name": "small"},
            headers=auth,
            timeout=600,
        )
        assert small.status_code == 201, small.text
        finished.append("small")
    finally:
        thread.join(600)
    assert finished == ["small", "import"], finished
    status = httpx.get(f"{base}/api/studies/big").json()
    assert status["finished"] == 20_000 and status["trials"]["COMPLETE"] == 20_000
