"""Issue 14 row 5: `/api/compare` computes each study once (peak memory: benchmarks/hardening.py); imported
rows with the same scales are one configuration's runs."""

from __future__ import annotations


def test_a_name_given_twelve_times_is_compared_once(client, auth) -> None:
    csv = "s_a,value\n" + "\n".join(f"1.0,{0.5 + i % 7 / 100}" for i in range(200))
    files = {"file": ("t.csv", csv, "text/csv")}
    assert client.post("/api/studies/import", files=files, data={"name": "same"}, headers=auth).status_code == 201
    result = client.get("/api/compare", params={"names": ["same"] * 12}).json()
    assert [row["name"] for row in result["studies"]] == ["same"] and result["studies"][0]["best"]["repeats"] == 200
