"""The plot kind `compare` (across studies): studies that differ only in encoding, each by its answer's best
configuration (`repeats.study_answer`, which the status's `search.summary` reads too: COMPLETE trials with the
same params, e.g. imported seeds, and their repeats are one configuration; its 95 % Student-t interval, none when
it cannot be estimated). The service's query (`GET /api/compare`) takes each row from `best_view` and
`spec_differences`; `compare_figure` draws its answer."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from afpe.search.repeats import Estimate
from afpe.service.plots.kinds import register_studies_plot
from afpe.service.plots.plain_text import plain_text
from afpe.service.plots.shared import empty_figure

IDENTITY_KEYS = ("task", "task_options", "metric", "direction", "trainer")


def best_view(best: Estimate) -> dict[str, Any]:
    """A compare row's `best`: the estimate's mean, runs (`repeats`), interval ends `low`/`high` (None, with
    `ci_note`, when the interval cannot be estimated), its search trial `number`, `params` and `ratio`."""
    low, high = best.ci if best.ci is not None else (None, None)
    return {
        "params": best.params,
        "mean": best.mean,
        "repeats": best.n,
        "low": low,
        "high": high,
        "number": best.number,
        "ratio": best.ratio,
        "ci_note": best.ci_note,
    }


def spec_differences(specs: dict[str, dict]) -> list[str]:
    """Fields other than the encoding in which the specs differ ('' list: comparable)."""
    differences = []
    for key in IDENTITY_KEYS:
        values = {name: spec.get(key) for name, spec in specs.items()}
        if len({repr(v) for v in values.values()}) > 1:
            differences.append(f"{key}: " + ", ".join(f"{name}={value!r}" for name, value in values.items()))
    return differences


@register_studies_plot("compare")
def compare_figure(result: dict[str, Any]) -> go.Figure:
    """Best mean per study with its 95 % t-interval as error bars (none where it cannot be estimated); `result`
    is the JSON of `GET /api/compare`."""
    rows = [r for r in result["studies"] if r["best"] is not None]
    if not rows:
        title = f"best value per study (mean over runs, {result['confidence']:.0%} t-interval)"
        return empty_figure(title, "no study compared has a COMPLETE trial yet")
    means = [r["best"]["mean"] for r in rows]
    plus = [(r["best"]["high"] - r["best"]["mean"]) if r["best"]["high"] is not None else 0 for r in rows]
    minus = [(r["best"]["mean"] - r["best"]["low"]) if r["best"]["low"] is not None else 0 for r in rows]
    fig = go.Figure(
        go.Bar(
            x=[plain_text(f"{r['name']} ({r['encoding']})") for r in rows],
            y=means,
            error_y={"type": "data", "array": plus, "arrayminus": minus, "symmetric": False},
        )
    )
    metric = rows[0]["metric"] if rows else "value"
    metric = plain_text(metric)
    fig.update_layout(
        title=f"best {metric} per study (mean over runs, {result['confidence']:.0%} t-interval)", yaxis_title=metric
    )
    return fig
