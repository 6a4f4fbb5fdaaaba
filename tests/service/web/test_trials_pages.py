"""The trials table and a trial's page in a real headless Chromium over real HTTP: sorted and filtered rows
link to trial pages; a FAIL's page shows its sanitised error as text and Plotly draws its learning curve."""

from __future__ import annotations

import re

from afpe.service.app import create_app


def test_trials_table_and_trial_page_in_chromium(make_settings, store_table_study, render_dom, serve):
    settings = make_settings(allowed_hosts=[])
    store_table_study(settings.storage)
    base = serve(create_app(settings))
    study = render_dom(f"{base}/studies/table", budget_ms=3000)
    assert 'href="/studies/table/trials"' in study
    table = render_dom(f"{base}/studies/table/trials?sort=value&order=desc&state=COMPLETE&per_page=10", budget_ms=2000)
    numbers = [int(n) for n in re.findall(r'<a href="/studies/table/trials/(\d+)">\d+</a></td>', table)]
    values = [float(v) for v in re.findall(r'<td class="state">COMPLETE</td>\s*<td>([^<]+)</td>', table)]
    assert len(numbers) == len(values) == 10 and values == sorted(values, reverse=True), table[:3000]
    assert "32 trials (COMPLETE) · page 1 of 4" in table and 'id="next"' in table
    assert "FAIL</td>" not in table
    failed = render_dom(f"{base}/studies/table/trials/36", budget_ms=5000)
    error = failed.split('id="trial-error"', 1)[1].split("</div>", 1)[0]
    assert "CUDA out of memory" in error and "&lt;b&gt;x&lt;/b&gt;" in error and "/home/alice" not in error
    assert "trial-00036.log" in failed and "/srv/tune" not in failed
    assert "main-svg" in failed.split('id="curve"', 1)[1], "the learning curve was drawn"
