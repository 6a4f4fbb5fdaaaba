"""The priors over REST and on the study page's header: `GET /api/studies/{name}` carries each prior's result, the
gain over the best prior and its interval (the fields `afpe status --json` has), and the header shows those very
numbers, a prior's rule names escaped."""

from __future__ import annotations

import re

import optuna
import pytest
from scipy import stats

from afpe.search.spec import SearchSpace
from afpe.search.storage import open_storage
from afpe.search.testing import quickstart_space, repeated_trials


def write_study(url: str) -> None:
    """The quickstart's space: its three priors (grid/max repeated twice), three searched trials, the best repeated."""
    spec = quickstart_space(name="priored", n_trials=6, prior=True)
    study = optuna.create_study(study_name="priored", storage=open_storage(url), direction="maximize")
    study.set_user_attr("spec", spec)
    runs = [
        (p.params, list(p.names), v)
        for p, v in zip(SearchSpace.from_spec(spec).priors, ([0.7], [0.74, 0.77, 0.75], [0.6]), strict=True)
    ]
    runs += [({"s_d0": 0.3, "s_d1": 0.9}, None, [0.82, 0.8, 0.85]), ({"s_d0": 2.0, "s_d1": 0.2}, None, [0.3])]
    runs += [({"s_d0": 0.2, "s_d1": 2.5}, ["<b>rule</b>"], [0.2])]  # an imported prior named by its user
    study.add_trials(repeated_trials(spec, runs))


def test_rest_and_the_header_state_the_gain_over_the_best_prior(make_settings, client) -> None:
    write_study(make_settings().storage)
    status = client.get("/api/studies/priored").json()
    gain = status["prior_gain"]
    interval = stats.ttest_ind([0.82, 0.8, 0.85], [0.74, 0.77, 0.75], equal_var=False).confidence_interval(0.95)
    assert gain["against"] == "grid/max" and gain["ci"] == pytest.approx([interval.low, interval.high])
    assert gain["difference"] == pytest.approx(0.07) and gain["n"] == [3, 3]
    assert [p["label"] for p in status["priors"]] == ["extent", "grid/max", "0.5/anisotropy", "<b>rule</b>"]
    assert status["priors"][1]["n"] == 3 and status["priors_note"] is None

    header = client.get("/studies/priored/header").text
    shown = dict(re.findall(r'data-field="((?:priors|prior_gain)[^"]*)" data-value="([^"]*)"', header))
    assert {"prior_gain.difference", "prior_gain.ci.0", "prior_gain.ci.1", "priors.1.mean"} <= set(shown)
    for path, value in shown.items():
        expected = status
        for part in path.split("."):
            expected = expected[int(part)] if isinstance(expected, list) else expected[part]
        assert float(value) == expected, path
    assert "Searching gained" in header and "over the best prior (grid/max," in header
    assert "<b>rule</b>" not in header and "&lt;b&gt;rule&lt;/b&gt;" in header
