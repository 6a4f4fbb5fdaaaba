"""Issue 27 item 1: compare and status give one interval for one study: the best configuration's mean over its
runs (imported rows with the same scales included) with the status's 95 % Student-t interval, on the API and on
both pages; an interval that cannot be estimated is named as such on both, never printed as [x, x]."""

from __future__ import annotations

import re


def imported(client, auth, name: str, csv: str) -> None:
    files = {"file": ("t.csv", csv, "text/csv")}
    response = client.post("/api/studies/import", files=files, data={"name": name}, headers=auth)
    assert response.status_code == 201, response.text


def test_compare_and_status_give_the_same_interval(client, auth) -> None:
    rows = ["s_a,s_b,value"]
    rows += [f"0.5,1.5,{value}" for value in (0.80, 0.86, 0.83)]  # one configuration, three imported seeds
    rows += [f"{0.1 * (i + 1)},{0.2 * (i + 2)},{0.7 + i / 100}" for i in range(6)]
    imported(client, auth, "seeds", "\n".join(rows))
    status = client.get("/api/studies/seeds").json()
    [row] = client.get("/api/compare", params={"names": ["seeds"]}).json()["studies"]
    best = status["best"]
    assert best["n"] == 3 and best["values"] == [0.86, 0.83, 0.8]
    assert (row["best"]["mean"], row["best"]["repeats"]) == (best["mean"], best["n"])
    assert [row["best"]["low"], row["best"]["high"]] == best["ci"] and best["ci"][0] < 0.8 < 0.86 < best["ci"][1]
    interval = f"[{best['ci'][0]:.4g}, {best['ci'][1]:.4g}]"
    assert interval in client.get("/compare", params={"names": ["seeds"]}).text
    header = client.get("/studies/seeds/header").text
    assert re.sub(r"<[^>]+>", "", header).count(f"95% CI {interval}") == 1, header


def test_an_interval_that_cannot_be_estimated_is_named_on_both(client, auth) -> None:
    imported(client, auth, "equal", "s_a,value\n1.0,0.5\n1.0,0.5\n2.0,0.4")
    status = client.get("/api/studies/equal").json()
    [row] = client.get("/api/compare", params={"names": ["equal"]}).json()["studies"]
    note = "interval not estimable: its 2 runs gave the same value"
    assert status["best"]["ci"] is None and status["best"]["ci_note"] == note
    assert row["best"]["low"] is None and row["best"]["ci_note"] == note
    assert note in client.get("/compare", params={"names": ["equal"]}).text
    assert note in client.get("/studies/equal").text and "[0.5, 0.5]" not in client.get("/studies/equal").text
