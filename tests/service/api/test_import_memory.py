"""Issue 30 row 2: a CSV import is checked as it is read, so the server's memory is bounded by the upload, not
by rows × columns (`csv.DictReader` built every row with every header key before any check: a 50.9 KB file of a
2002-column header and 20,000 one-field rows took the server from 1.40 to 2.40 GB before its 422)."""

from __future__ import annotations

import tracemalloc

import httpx

from afpe.service.app import create_app

PEAK_LIMIT = 64 * 2**20  # bytes the server may allocate for a file of tens of KB (the old reader: > 500 MB)


def import_peak(base: str, auth: dict, name: str, content: str) -> tuple[httpx.Response, int]:
    """(the import's answer, the peak of Python allocations while the server handled it)."""
    tracemalloc.start()
    try:
        response = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", content, "text/csv")},
            data={"name": name},
            headers=auth,
            timeout=600,
        )
        return response, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_wide_header_is_refused_before_the_rows_are_read(make_settings, auth, serve):
    base = serve(create_app(make_settings()))
    content = ",".join(f"s_{i}" for i in range(2001)) + ",value\n" + "1\n" * 20_000
    assert 50_000 < len(content) < 56_000  # the file: 50.9 KB
    response, peak = import_peak(base, auth, "wide", content)
    assert response.status_code == 422, response.text
    assert "2001 scale columns; a study has at most 8 axes" in response.json()["error"]
    assert peak < PEAK_LIMIT, f"{peak / 2**20:.0f} MiB"
    assert httpx.get(f"{base}/api/studies/wide").status_code == 404


def test_unused_columns_cost_no_memory_per_row(make_settings, auth, serve):
    base = serve(create_app(make_settings()))
    content = "s_a,value," + ",".join(f"x{i}" for i in range(2000)) + "\n"
    content += "".join(f"{1 + i % 9},{i % 7 / 7}\n" for i in range(5000))
    response, peak = import_peak(base, auth, "narrow-rows", content)
    assert response.status_code == 201, response.text
    assert response.json()["finished"] == 5000
    assert peak < PEAK_LIMIT, f"{peak / 2**20:.0f} MiB"


def test_a_row_longer_than_its_header_or_without_a_scale_is_refused(client, auth):
    for content, complaint in [
        ("s_a,value\n1,0.5\n2,0.6,7\n", "file: line 3: 3 fields, the header has 2"),
        ("s_a,s_b,value\n1,2,0.5\n\n3\n", "file: line 4: no scale in s_b"),
    ]:
        files = {"file": ("t.csv", content, "text/csv")}
        response = client.post("/api/studies/import", files=files, data={"name": "short"}, headers=auth)
        assert response.status_code == 422, response.text
        assert complaint in response.json()["error"]
