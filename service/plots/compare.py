"""The plot kind `compare` (across studies): studies that differ only in encoding, each by its best configuration
with a bootstrap confidence interval of its mean over repeats (COMPLETE trials with the same scales, e.g. other
seeds). The service's query (`GET /api/compare`) computes the numbers with `best_estimate` and
`spec_differences`; `compare_figure` draws its answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from scipy.stats import bootstrap

from afpe.search.analysis import complete_trials
from afpe.service.plots.kinds import register_studies_plot
from afpe.service.plots.plain_text import plain_text
from afpe.service.plots.shared import empty_figure

CONFIDENCE = 0.95
N_RESAMPLES = 2000
BOOTSTRAP_CELLS = 2**20  # resampled values held at once (scipy's `batch`): memory stays ~16 MB at any size
IDENTITY_KEYS = ("task", "task_options", "metric", "direction", "trainer")


@dataclass(frozen=True)
class BestEstimate:
    """Mean metric of the best scales over `repeats` trials; (low, high) is the percentile bootstrap CI,
    None with a single repeat."""

    params: dict[str, float]
    mean: float
    repeats: int
    low: float | None
    high: float | None


def best_estimate(
    trials: Sequence[FrozenTrial], direction: str, seed: int = 0, cells: int = BOOTSTRAP_CELLS
) -> BestEstimate | None:
    """The best configuration by mean over its COMPLETE trials, with its bootstrap CI (resampled in batches
    of `cells` values, so 20,000 repeats do not allocate 2000 x 20,000 at once); None without any."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    params_of: dict[tuple, dict[str, float]] = {}
    for trial in complete_trials(trials):
        key = tuple(sorted((name, round(value, 12)) for name, value in trial.params.items()))
        groups[key].append(trial.value)
        params_of[key] = dict(trial.params)
    if not groups:
        return None
    pick = max if direction == "maximize" else min
    key = pick(groups, key=lambda k: float(np.mean(groups[k])))
    values = np.asarray(groups[key], dtype=float)
    low = high = None
    if len(values) >= 2 and np.ptp(values) > 0:
        interval = bootstrap(
            (values,),
            np.mean,
            confidence_level=CONFIDENCE,
            n_resamples=N_RESAMPLES,
            batch=max(1, cells // len(values)),
            method="percentile",
            rng=seed,
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
    elif len(values) >= 2:
        low = high = float(values[0])
    return BestEstimate(params_of[key], float(values.mean()), len(values), low, high)


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
    """Best value per study with its bootstrap CI as error bars (none with a single repeat); `result` is
    the JSON of `GET /api/compare`."""
    rows = [r for r in result["studies"] if r["best"] is not None]
    if not rows:
        title = f"best value per study ({result['confidence']:.0%} bootstrap CI)"
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
    fig.update_layout(title=f"best {metric} per study ({result['confidence']:.0%} bootstrap CI)", yaxis_title=metric)
    return fig
