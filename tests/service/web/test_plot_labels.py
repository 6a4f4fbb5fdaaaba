"""Issue 30 row 8 in a real headless Chromium over real HTTP: a task option's key or value made of markup is
drawn by Plotly as text on the trend page, never as a link to a foreign site."""

from __future__ import annotations

import json
import re

import httpx

from afpe.service.app import create_app

MARKUP = '<a href="https://evil.example/">x</a>'


def test_markup_in_task_options_is_drawn_as_text(make_settings, auth, serve, render_dom):
    base = serve(create_app(make_settings()))
    for name, value in (("markup-a", MARKUP), ("markup-b", "plain")):
        response = httpx.post(
            f"{base}/api/studies/import",
            files={"file": ("t.csv", "s_xy,s_z,value\n1,2,0.5\n2,1,0.7\n0.5,1,0.6\n", "text/csv")},
            data={"name": name, "task_options": json.dumps({MARKUP: value})},
            headers=auth,
        )
        assert response.status_code == 201, response.text
    dom = render_dom(f"{base}/trend?names=markup-a&names=markup-b", budget_ms=10000)
    plot = dom.split('id="trend-plot"', 1)[1].split("<script", 1)[0]
    assert plot.count('class="main-svg"') >= 2, plot[:2000]
    assert not re.search(r"<a\b[^>]*evil\.example", plot), re.findall(r"<a\b[^>]*>", plot)
    drawn = '&lt;a href="https://evil.example/"&gt;x&lt;/a&gt;'
    assert f"task_options.{drawn}" in plot  # the axis title, as text
    assert f">{drawn}<" in plot  # the option's value: a tick label, as text
