"""Every REST endpoint's success and failure cases through the real app on real Postgres (no Ray needed)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest


def csv_rows() -> str:
    """140 trials on a 10 x 7 scale grid, twice (seeds 0 and 1); the metric peaks at log2(rows/cols) = 1."""
    lines = ["s_rows,s_cols,value,seed"]
    for i in range(140):
        rows, cols, seed = 0.1 * (i % 10 + 1), 0.2 + 0.05 * (i % 7), i // 70
        lines.append(f"{rows},{cols},{1 - (math.log2(rows / cols) - 1) ** 2 / 10 + 0.001 * seed},{seed}")
    return "\n".join(lines)


CSV = csv_rows()


def import_study(client, auth, name="imported", content=CSV, **fields):
    data = {"name": name, "encoding": "afpe", "metric": "auroc", **fields}
    return client.post("/api/studies/import", files={"file": ("t.csv", content, "text/csv")}, data=data, headers=auth)


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/studies/{name}/plots/{kind}" in paths and "/api/studies/import" in paths


def test_specs(client):
    specs = client.get("/api/specs").json()
    assert "quickstart" in [s["name"] for s in specs]
    spec = client.get("/api/specs/quickstart").json()
    assert spec["name"] == "quickstart" and spec["axes"]
    missing = client.get("/api/specs/nope")
    assert missing.status_code == 404 and "quickstart" in missing.json()["error"]
    assert client.get("/api/specs/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_create_validation_and_auth(client, auth, tiny):
    spec = tiny(client, "bad")
    assert client.post("/api/studies", json=spec).status_code == 401
    assert client.post("/api/studies", json=spec, headers={"Authorization": "Bearer wrong"}).status_code == 401
    cases = {
        "task": ("task", "no-such-task"),
        "encoding": ("encoding", "sincos"),
        "n_trials": ("n_trials", 5000),
        "trainer.epochs": ("trainer", {**spec["trainer"], "epochs": 5000}),
        "data_root": ("data_root", "/etc"),
        "name": ("name", "Bad Name!"),
    }
    for field, (key, value) in cases.items():
        response = client.post("/api/studies", json={**spec, key: value}, headers=auth)
        assert response.status_code == 422, (field, response.text)
        assert field in response.json()["error"], (field, response.json())
    escape = client.post("/api/studies", json={**spec, "data_root": "../../etc"}, headers=auth)
    assert escape.status_code == 422 and "outside the data directory" in escape.json()["error"]
    assert (
        client.post(
            "/api/studies", content=b"not json", headers={**auth, "content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.get("/api/studies").json() == []


def test_import_status_trials_plots_compare(client, auth):
    created = import_study(client, auth)
    assert created.status_code == 201, created.text
    status = created.json()
    assert status["state"] == "succeeded" and status["finished"] == 140 and status["trials"]["COMPLETE"] == 140
    assert status["positions"] is None, "normalized positions: no note"
    assert status["best"]["params"].keys() == {"s_rows", "s_cols"}
    assert status["best"]["ratio"] == pytest.approx(
        status["best"]["params"]["s_rows"] / status["best"]["params"]["s_cols"]
    )
    assert import_study(client, auth).status_code == 409
    assert import_study(client, {}, name="other").status_code == 401
    assert import_study(client, auth, name="broken", content="a,b\n1,2\n").status_code == 422
    assert import_study(client, auth, name="negative", content="s_a,value\n-1,2\n").status_code == 422
    assert import_study(client, auth, name="badenc", encoding="nope").status_code == 422

    listed = client.get("/api/studies").json()
    assert [s["name"] for s in listed] == ["imported"] and listed[0]["best_value"] == status["best"]["value"]
    assert client.get("/api/studies/missing").status_code == 404

    page = client.get("/api/studies/imported/trials", params={"offset": 130, "limit": 20}).json()
    assert page["total"] == 140 and len(page["items"]) == 10 and page["items"][0]["number"] == 130
    assert client.get("/api/studies/imported/trials", params={"limit": 0}).status_code == 422
    rows = list(csv.DictReader(io.StringIO(client.get("/api/studies/imported/trials?format=csv").text)))
    assert len(rows) == 140 and {"s_rows", "s_cols", "value", "state"} <= rows[0].keys()
    assert float(rows[5]["s_rows"]) == pytest.approx(0.6)

    for kind in ("ratio", "axes", "contour", "history", "similarity"):
        figure = client.get(f"/api/studies/imported/plots/{kind}")
        assert figure.status_code == 200, (kind, figure.text)
        assert json.loads(figure.text)["data"]
    assert client.get("/api/studies/imported/plots/pie").status_code == 422
    assert client.get("/api/studies/missing/plots/ratio").status_code == 404

    # the exported CSV imports again as the same study under another name (a search run elsewhere)
    exported = client.get("/api/studies/imported/trials?format=csv").text
    again = import_study(client, auth, name="fourier-run", content=exported, encoding="fourier").json()
    assert again["best"]["value"] == status["best"]["value"]

    result = client.get("/api/compare", params={"names": ["imported", "fourier-run"]}).json()
    assert result["comparable"] and [r["encoding"] for r in result["studies"]] == ["afpe", "fourier"]
    best = result["studies"][0]["best"]
    assert best["repeats"] == 2 and best["low"] <= best["mean"] <= best["high"]
    assert client.get("/api/compare", params={"names": ["missing"]}).status_code == 404
    assert client.get("/compare", params={"names": ["imported", "fourier-run"]}).status_code == 200

    assert client.post("/api/studies/imported/cancel", headers=auth).status_code == 409
    assert client.post("/api/studies/imported/resume", headers=auth).status_code == 409
    assert client.post("/api/studies/imported/cancel").status_code == 401
    assert client.post("/api/studies/missing/cancel", headers=auth).status_code == 404


def test_dashboard_pages(client, auth):
    import_study(client, auth, name="page-study")
    index = client.get("/")
    assert index.status_code == 200 and "page-study" in index.text and 'name="spec"' in index.text
    page = client.get("/studies/page-study")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text and 'id="plot-ratio"' in page.text
    assert client.get("/studies/missing").status_code == 404
    script = client.get("/static/plotly.min.js")
    assert script.status_code == 200 and len(script.content) > 1_000_000
    wrong = client.post("/studies", data={"spec": "quickstart", "token": "wrong"}, follow_redirects=False)
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]


def test_settings_refuse_open_host_without_token(make_settings):
    from afpe.service.app import create_app

    with pytest.raises(ValueError, match="host"):
        create_app(make_settings(api_token=None, host="0.0.0.0"))
    app = create_app(make_settings(api_token=None))
    assert app.state.settings.generated_token and len(app.state.settings.api_token) >= 24


def test_serve_cli_refuses_open_host(monkeypatch, capsys):
    from afpe.service.cli import main

    monkeypatch.delenv("AFPE_API_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--storage", "sqlite:///:memory:"]) == 2
    assert "AFPE_API_TOKEN" in capsys.readouterr().err


def test_rest_and_cli_agree_on_finished_best_and_boundary_warnings(client, auth, make_settings, capsys):
    """An imported search with FAIL rows whose best lies near the range edge: REST and `afpe status` say the
    same (finished = COMPLETE + PRUNED; the 10 % rule flags the scale and the ratio)."""
    from afpe.service.cli import main

    lines = ["s_time,s_space,value,state"]
    for i in range(64):
        state = "FAIL" if i % 8 == 7 else "COMPLETE"
        value = "" if state == "FAIL" else f"{0.5 + 0.001 * i}"
        lines.append(f"{0.01 * 1.1**i},{1.0 + 0.01 * (i % 5)},{value},{state}")
    status = import_study(client, auth, name="echo", content="\n".join(lines)).json()
    assert status["trials"]["FAIL"] == 8 and status["finished"] == 56
    assert status["best"]["params"]["s_time"] == pytest.approx(0.01 * 1.1**62)
    assert any("s_time=" in w for w in status["warnings"]) and any("s_time/s_space" in w for w in status["warnings"])
    assert main(["status", "echo", "--storage", make_settings().storage]) == 0
    printed = capsys.readouterr().out
    assert "56/64 finished" in printed
    assert [line.removeprefix("warning: ") for line in printed.splitlines() if line.startswith("warning:")] == status[
        "warnings"
    ]
    listed = {s["name"]: s for s in client.get("/api/studies").json()}
    assert listed["echo"]["finished"] == 56


def test_openapi_documents_the_spec_body_and_every_response(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/studies"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/StudySpec")
    assert {"axes", "task", "n_trials"} <= schema["components"]["schemas"]["StudySpec"]["properties"].keys()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("tags"), (method, path)
            ok = operation["responses"].get("200") or operation["responses"].get("201")
            content = ok["content"]  # JSON, but a checkpoint route serves a file and an export text
            assert content and all("schema" in media for media in content.values()), (method, path)


def repeated_csv(best_ratio: float) -> str:
    """Five configurations around `best_ratio` (rows/cols), the best two repeated twice (repeat_of)."""
    lines = ["s_rows,s_cols,value,seed,repeat_of,repeat"]
    for exponent in range(-2, 3):
        lines.append(f"{best_ratio * 2.0**exponent},1.0,{1 - 0.1 * abs(exponent)},0,,")
    for number, exponent in ((2, 0), (1, -1)):
        for repeat, noise in ((1, 0.01), (2, -0.02)):
            lines.append(
                f"{best_ratio * 2.0**exponent},1.0,{1 - 0.1 * abs(exponent) + noise},{repeat},{number},{repeat}"
            )
    return "\n".join(lines)


def test_trend_of_studies_that_differ_in_one_task_option(client, auth):
    for name, a, encoding in (("tr-a1", 1, "afpe"), ("tr-a4", 4, "afpe"), ("tr-iso4", 4, "fourier")):
        options = json.dumps({"anisotropy": [1, 1, a]})
        content = repeated_csv(1.0 / a)
        created = import_study(client, auth, name=name, content=content, encoding=encoding, task_options=options)
        assert created.status_code == 201, created.text
    status = client.get("/api/studies/tr-a4").json()
    best = status["best"]
    assert best["n"] == 3 and best["ratio"] == pytest.approx(0.25) and best["ci"][0] < best["mean"] < best["ci"][1]
    assert status["repeats"]["done"] == 4 and status["finished"] == 5 and status["ratio_range"][0] <= 0.25

    trend = client.get("/api/trend", params={"names": ["tr-a1", "tr-a4", "tr-iso4"]})
    assert trend.status_code == 200, trend.text
    result = trend.json()
    assert result["option"] == "task_options.anisotropy.2" and result["differences"] == []
    afpe = [p for p in result["points"] if p["encoding"] == "afpe"]
    assert [(p["option_value"], p["ratio"]) for p in afpe] == [(1, pytest.approx(1.0)), (4, pytest.approx(0.25))]
    assert all(p["n"] == 3 and p["ci_low"] < p["mean"] < p["ci_high"] for p in result["points"])

    same = client.get("/api/trend", params={"names": ["tr-a4", "tr-iso4"]})
    assert same.status_code == 409 and "exactly one task option" in same.json()["error"]
    assert client.get("/api/trend", params={"names": ["tr-a1", "missing"]}).status_code == 404
    bad = import_study(client, auth, name="bad-options", task_options="[1, 2]")
    assert bad.status_code == 422 and "task_options" in bad.json()["error"]
    assert client.get("/trend", params={"names": ["tr-a1", "tr-a4", "tr-iso4"]}).status_code == 200
