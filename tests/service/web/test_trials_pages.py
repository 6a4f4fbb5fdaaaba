"""The trials table and a trial's page in a real headless Chromium over real HTTP: sorted and filtered rows
link to trial pages; a FAIL's page shows its sanitised error as text and Plotly draws its learning curve."""

from __future__ import annotations

import re

from afpe.service.app import create_app


def test_trials_table_and_trial_page_in_chromium(make_settings, store_table_study, browser, serve):
    settings = make_settings(allowed_hosts=[])
    store_table_study(settings.storage)
    base = serve(create_app(settings))
    browser.goto(f"{base}/studies/table")
    assert browser.run("document.getElementById('trials-link').getAttribute('href')") == "/studies/table/trials"
    browser.goto(f"{base}/studies/table/trials?sort=value&order=desc&state=COMPLETE&per_page=10")
    table = browser.run("document.documentElement.outerHTML")
    numbers = [int(n) for n in re.findall(r'<a href="/studies/table/trials/(\d+)">\d+</a></td>', table)]
    values = [float(v) for v in re.findall(r'<td class="state">COMPLETE</td>\s*<td>([^<]+)</td>', table)]
    assert len(numbers) == len(values) == 10 and values == sorted(values, reverse=True), table[:3000]
    assert "32 trials (COMPLETE) · page 1 of 4" in table and 'id="next"' in table
    assert "FAIL</td>" not in table
    browser.goto(f"{base}/studies/table/trials/36")
    browser.wait_for("document.querySelector('#curve .main-svg') !== null")  # the learning curve was drawn
    error = browser.run("document.getElementById('trial-error').innerHTML")
    assert "CUDA out of memory" in error and "&lt;b&gt;x&lt;/b&gt;" in error and "/home/alice" not in error
    page = browser.run("document.documentElement.outerHTML")
    assert "trial-00036.log" in page and "/srv/tune" not in page
