"""Issue 29, item 2: the campaign page shows the campaign's progress, its table (the numbers of
`GET /api/campaigns/{name}`), its comparisons and the trend of its answered studies, rendered by a real headless
Chromium from a real server; names and values are escaped."""

from __future__ import annotations

import csv
import io
import re

from afpe.service.app import create_app

CAMPAIGN = {
    "name": "page",
    "description": "lengths <b>bold</b>",
    "base": "quickstart",
    "vary": {"encoding": ["afpe", "sincos"], "task_options.lengths": [[0.4, 0.2, 0.3], [0.4, 0.1, 0.3]]},
    "overrides": ["trainer.model.dim=48", "n_trials=6", "data_root=null"],
}


def test_the_campaign_page_shows_the_table_and_the_trend(make_settings, postgres_url, cli_campaign, serve, render_dom):
    cli_campaign(postgres_url, CAMPAIGN, studies=3)
    base = serve(create_app(make_settings()))
    import httpx

    table = httpx.get(f"{base}/api/campaigns/page", timeout=120).json()
    dom = render_dom(f"{base}/campaigns/page", budget_ms=10000)
    assert "<strong>incomplete</strong> · 3 of 4 studies succeeded" in dom
    assert "lengths &lt;b&gt;bold&lt;/b&gt;" in dom  # the description is text
    rows = re.findall(
        r"<tr><td><a href=\"/studies/([^\"]+)\">", dom.split('id="campaign-table"')[1].split("</table>")[0]
    )
    assert rows == [row["study"] for row in table["studies"]]
    first = table["studies"][0]
    assert f"<td>{first['mean']:.4g}</td>" in dom and first["ci_low"] is None
    assert "not estimable (n = 1)" in dom  # no repeats were recorded: one run, no interval
    comparison = table["comparisons"][0]
    cells = rf"<td>afpe − sincos</td>\s*<td>{comparison['difference']:.4g}</td>\s*<td>not estimable</td>"
    assert re.search(cells, dom)
    assert 'class="plot-container plotly"' in dom.split('id="trend-plot"')[1][:400]  # Plotly drew the trend
    assert "pending" in dom
    assert '<a href="/campaigns/page">page</a>' in httpx.get(f"{base}/", timeout=120).text  # the index links it
    # the exports hold the page's numbers: every study's mean in the CSV and the Markdown is the one on the page
    exported = httpx.get(f"{base}/api/campaigns/page/export", params={"format": "csv"}, timeout=120).text
    markdown = httpx.get(f"{base}/api/campaigns/page/export", params={"format": "markdown"}, timeout=120).text
    means = {row["study"]: row["mean"] for row in csv.DictReader(io.StringIO(exported))}
    assert list(means) == rows and sum(bool(mean) for mean in means.values()) == 3
    for mean in filter(None, means.values()):
        assert f"<td>{float(mean):.4g}</td>" in dom and f"| {float(mean):.4g} |" in markdown
