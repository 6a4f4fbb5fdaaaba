"""The study page in a real headless Chromium over real HTTP: Plotly (served locally) draws every plot."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from afpe.service.app import create_app
from afpe.service.cluster.topology import free_port


def serve(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_study_page_renders_plots_in_chromium(make_settings, auth, render_dom):
    server, thread, base = serve(create_app(make_settings()))
    try:
        lines = ["s_rows,s_cols,value"] + [
            f"{0.1 * (i % 9 + 1)},{0.15 * (i % 5 + 1)},{(i * 37 % 11) / 11}" for i in range(45)
        ]
        response = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", "\n".join(lines), "text/csv")},
            data={"name": "browser", "encoding": "afpe"},
            headers=auth,
        )
        assert response.status_code == 201, response.text
        dom = render_dom(f"{base}/studies/browser", budget_ms=15000)
        # each of the six plot divs got Plotly's SVG root: the figures were fetched and drawn, not just linked
        assert dom.count('class="main-svg"') >= 6 * 2, dom[:2000]
        for kind in ("ratio", "axes", "contour", "history", "similarity"):
            block = dom.split(f'id="plot-{kind}"', 1)[1][:4000]
            assert "main-svg" in block, kind
        assert "vs scale ratio s_rows/s_cols" in dom
        compare = render_dom(f"{base}/compare?names=browser", budget_ms=8000)
        assert "main-svg" in compare
    finally:
        server.should_exit = True
        thread.join(10)


def test_trend_page_renders_in_chromium(make_settings, auth, render_dom):
    server, thread, base = serve(create_app(make_settings()))
    try:
        for a in (1, 2, 4):
            lines = ["s_xy,s_z,value,repeat_of,repeat"]
            lines += [f"{2.0**e},1.0,{0.1 + 0.05 * abs(e + a.bit_length() - 1)},," for e in range(-3, 2)]
            lines += [
                f"{2.0 ** (1 - a.bit_length())},1.0,{0.1 + noise},{4 - a.bit_length()},{i}"
                for i, noise in ((1, 0.01), (2, -0.01))
            ]
            response = httpx.post(
                f"{base}/api/studies/import",
                files={"file": ("t.csv", "\n".join(lines), "text/csv")},
                data={"name": f"trend-a{a}", "direction": "minimize", "task_options": f'{{"anisotropy": [1, 1, {a}]}}'},
                headers=auth,
            )
            assert response.status_code == 201, response.text
        dom = render_dom(f"{base}/trend?names=trend-a1&names=trend-a2&names=trend-a4", budget_ms=10000)
        assert "Trend against task_options.anisotropy.2" in dom
        block = dom.split('id="trend-plot"', 1)[1]
        assert block.count('class="main-svg"') >= 2 and "best s_xy/s_z" in block, block[:2000]
    finally:
        server.should_exit = True
        thread.join(10)
