"""GET /api/studies/{name}/trials (sorted, filtered, paginated) and /trials/{number} over the real app and a
real PostgreSQL study: the page's order and filter are those of the whole study, a FAIL's error is sanitised."""

from __future__ import annotations

import optuna
from fastapi.testclient import TestClient
from optuna.distributions import FloatDistribution

from afpe.service.app import create_app


def test_trials_sorted_filtered_paginated_and_one_trial(make_settings, store_table_study):
    settings = make_settings()
    store_table_study(settings.storage)
    with TestClient(create_app(settings)) as client:
        everything = client.get("/api/studies/table/trials", params={"limit": 1000}).json()
        assert everything["total"] == 40 and [t["number"] for t in everything["items"]] == list(range(40))
        by_number = {t["number"]: t for t in everything["items"]}
        assert by_number[39]["repeat_of"] == 0 and by_number[39]["seed"] == 102
        first = by_number[0]
        assert first["ratio"] == first["params"]["s_rows"] / first["params"]["s_cols"]
        assert first["epochs"] == len(first["intermediate_values"]) == 2 and first["seconds"] == 1.0

        page = client.get(
            "/api/studies/table/trials",
            params={"sort": "value", "order": "desc", "state": ["COMPLETE"], "offset": 5, "limit": 10},
        ).json()
        complete = sorted(
            (t for t in everything["items"] if t["state"] == "COMPLETE"), key=lambda t: t["value"], reverse=True
        )
        assert page["total"] == len(complete) == 32 and page["sort"] == "value" and page["order"] == "desc"
        assert [t["number"] for t in page["items"]] == [t["number"] for t in complete[5:15]]
        assert all(t["intermediate_values"] for t in page["items"]), "a page's trials come whole"

        scales = client.get("/api/studies/table/trials", params={"sort": "s_cols", "limit": 1000}).json()["items"]
        cols = [t["params"]["s_cols"] for t in scales]
        assert cols == sorted(cols)
        failed = client.get("/api/studies/table/trials", params={"state": ["FAIL", "PRUNED"]}).json()
        assert failed["total"] == 8 and {t["state"] for t in failed["items"]} == {"FAIL", "PRUNED"}
        no_value_last = client.get("/api/studies/table/trials", params={"sort": "value", "limit": 1000}).json()
        assert [t["value"] is None for t in no_value_last["items"]] == [False] * 32 + [True] * 8

        assert client.get("/api/studies/table/trials", params={"sort": "s_nope"}).json()["error"].startswith("sort:")
        assert client.get("/api/studies/table/trials", params={"state": "DONE"}).status_code == 422
        assert client.get("/api/studies/nope/trials").status_code == 404

        trial = client.get("/api/studies/table/trials/36").json()
        assert trial["state"] == "FAIL" and trial["log"] == "trial-00036.log"
        # where the driver ran stays on the server: the log attr is the file's name, in the list as on the page
        assert by_number[36]["user_attrs"]["log"] == trial["user_attrs"]["log"] == "trial-00036.log"
        for secret in ("/home/alice", "10.1.2.3", "abcdef123456"):
            assert secret not in trial["error"] and secret not in str(trial["user_attrs"])
        assert "CUDA out of memory" in trial["error"] and trial["intermediate_values"] == {"1": 0.4}
        exported = client.get("/api/studies/table/trials", params={"format": "csv"}).text  # the CSV as the JSON
        assert "trial-00036.log" in exported and "CUDA out of memory" in exported
        for secret in ("/srv/tune", "/home/alice", "10.1.2.3", "abcdef123456"):
            assert secret not in exported
        assert client.get("/api/studies/table/trials/99").status_code == 404


def test_a_running_trial_is_read_fresh_while_ended_ones_are_kept(make_settings, store_table_study):
    settings = make_settings()
    store_table_study(settings.storage)
    with TestClient(create_app(settings)) as client:
        study = optuna.load_study(study_name="table", storage=client.app.state.trials.reads.storage)
        running = study.ask({"s_rows": FloatDistribution(0.1, 4.0, log=True)})
        running.report(0.3, 1)

        def newest() -> dict:
            query = {"sort": "number", "order": "desc", "limit": 5}
            return client.get("/api/studies/table/trials", params=query).json()["items"][0]

        assert (newest()["state"], newest()["intermediate_values"]) == ("RUNNING", {"1": 0.3})
        running.report(0.6, 2)
        assert newest()["intermediate_values"] == {"1": 0.3, "2": 0.6}, "a running trial's curve is read again"
        best_first = {"sort": "value", "order": "desc", "per_page": 1}
        assert f'trials/{running.number}">' not in client.get("/studies/table/trials", params=best_first).text
        study.tell(running, 2.0)
        assert (newest()["state"], newest()["value"]) == ("COMPLETE", 2.0)
        page = client.get("/studies/table/trials", params=best_first).text
        assert f'trials/{running.number}">' in page, "the table's ordering follows the trial that ended"


def test_plots_take_the_same_state_filter(make_settings, store_table_study):
    settings = make_settings()
    store_table_study(settings.storage)
    with TestClient(create_app(settings)) as client:
        everything = client.get("/api/studies/table/plots/timeline")
        failed = client.get("/api/studies/table/plots/timeline", params={"state": "FAIL"})
        assert everything.status_code == failed.status_code == 200
        assert {trace["name"] for trace in everything.json()["data"]} >= {"COMPLETE", "FAIL"}
        assert {trace["name"] for trace in failed.json()["data"]} == {"FAIL"}
        assert failed.headers["etag"] != everything.headers["etag"]
        # a FAIL has no value: the filter leaves the ratio plot no point to draw
        points = client.get("/api/studies/table/plots/ratio").json()["data"]
        nothing = client.get("/api/studies/table/plots/ratio", params={"state": "FAIL"}).json()["data"]
        assert sum(len(trace.get("x") or []) for trace in points) >= 32
        assert sum(len(trace.get("x") or []) for trace in nothing) == 0
        assert client.get("/api/studies/table/plots/ratio", params={"state": "DONE"}).status_code == 422
