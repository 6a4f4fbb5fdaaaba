"""Trend across studies: studies that differ in one task option (e.g. the anisotropy sweep a = 1, 2, 4, 8) each
summarised by its answer (`afpe.search.summary`): the best scale ratio with the range of ratios tied with it, the
smoothed optimum's ratio with its 95 % interval, and the best configuration's mean metric with its 95 % interval,
against that option, one series per encoding (AFPE vs isotropic Fourier at each setting): the plot kind `trend`
(across studies). The service's query (`GET /api/trend`) computes `trend_data`; `trend_figure` draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from afpe.search.spec import SearchSpace
from afpe.search.summary import summarize_trials
from afpe.service.plots.kinds import register_studies_plot
from afpe.service.plots.plain_text import plain_text
from afpe.service.plots.shared import empty_figure, padded_range, ratio_ticks

IGNORED_KEYS = ("name", "description", "encoding", "axes", "ratio", "n_trials", "repeats", "resources", "data_root")


@dataclass(frozen=True)
class TrendPoint:
    """One study at one value of the varying option."""

    name: str
    encoding: str
    option_value: float | str
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    optimum_ratio: float | None = None  # the smoothed optimum's ratio and its 95 % interval (`search/surface.py`)
    optimum_low: float | None = None
    optimum_high: float | None = None


@dataclass(frozen=True)
class TrendData:
    option: str
    metric: str
    direction: str
    ratio: tuple[str, str] | None
    points: list[TrendPoint]
    differences: list[str]  # fields besides encoding and the option in which the studies differ


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """{'task_options.anisotropy.2': 4, ...}: nested dicts and lists as dotted paths."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}").items()}
    if isinstance(value, list | tuple):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}.{i}").items()}
    return {prefix: value}


def varying_option(specs: dict[str, dict]) -> tuple[str, dict[str, Any]]:
    """The one task-option path whose value differs between the specs, and its value per study (e.g.
    ('task_options.anisotropy.2', {'a1': 1, 'a4': 4})). ValueError when none or several differ."""
    flat = {name: _flatten(spec.get("task_options") or {}, "task_options") for name, spec in specs.items()}
    keys = sorted({key for values in flat.values() for key in values})
    varying = [key for key in keys if len({repr(values.get(key)) for values in flat.values()}) > 1]
    if len(varying) != 1:
        found = ", ".join(varying) or "none"
        raise ValueError(f"names: a trend needs studies that differ in exactly one task option (differing: {found})")
    return varying[0], {name: values.get(varying[0]) for name, values in flat.items()}


def other_differences(specs: dict[str, dict]) -> list[str]:
    """Top-level spec fields other than the task options, encoding and bookkeeping that differ."""
    keys = sorted({key for spec in specs.values() for key in spec} - {"task_options", *IGNORED_KEYS})
    return [key for key in keys if len({repr(spec.get(key)) for spec in specs.values()}) > 1]


def trend_data(studies: Sequence[tuple[str, dict, Sequence[FrozenTrial]]]) -> TrendData:
    """Each (name, stored spec, trials) summarised against the option that varies between them. ValueError
    when fewer than two studies are given or they do not differ in exactly one task option."""
    if len(studies) < 2:
        raise ValueError("names: a trend needs at least two studies")
    specs = {name: spec for name, spec, _ in studies}
    option, values = varying_option(specs)
    points = []
    metric = direction = ""
    ratio = None
    for name, spec, trials in studies:
        space = SearchSpace.from_spec(spec)
        summary = summarize_trials(name, trials, space)
        metric, direction, ratio = space.metric, space.direction, ratio or space.ratio
        answer = summary.answer
        best = answer.best if answer else None
        ratio_range = answer.ratio_range if answer and answer.repeated else None
        value = values[name]
        optimum = summary.optimum
        optimum_ci = optimum.ci if optimum and optimum.ci else (None, None)
        points.append(
            TrendPoint(
                name=name,
                encoding=space.encoding,
                option_value=value if isinstance(value, int | float) else str(value),
                ratio=best.ratio if best else None,
                ratio_low=ratio_range[0] if ratio_range else None,
                ratio_high=ratio_range[1] if ratio_range else None,
                mean=best.mean if best else None,
                ci_low=best.ci[0] if best and best.ci else None,
                ci_high=best.ci[1] if best and best.ci else None,
                n=best.n if best else 0,
                optimum_ratio=optimum.ratio if optimum else None,
                optimum_low=optimum_ci[0],
                optimum_high=optimum_ci[1],
            )
        )
    points.sort(key=lambda p: (p.encoding, str(type(p.option_value)), p.option_value))
    return TrendData(option, metric, direction, ratio, points, other_differences(specs))


def _interval_bars(centres: list[float | None], low: list[float | None], high: list[float | None]) -> dict:
    """Plotly's asymmetric error bars from interval ends (0 where a point has no interval)."""

    def lengths(ends: list[float | None], upper: bool) -> list[float]:
        return [0.0 if e is None or c is None else abs(e - c) for e, c in zip(ends, centres, strict=True)]

    return {"type": "data", "symmetric": False, "array": lengths(high, True), "arrayminus": lengths(low, False)}


def _series(points: list[TrendPoint], y: list[float | None], low: list, high: list, name: str) -> go.Scatter:
    return go.Scatter(
        x=[plain_text(p.option_value) if isinstance(p.option_value, str) else p.option_value for p in points],
        y=y,
        mode="lines+markers",
        name=name,
        customdata=[p.name for p in points],
        error_y=_interval_bars(y, low, high),
        hovertemplate="%{customdata}<br>option %{x}<br>%{y:.4g}",
    )


@register_studies_plot("trend")
def trend_figure(d: TrendData) -> go.Figure:
    """Left: best ratio s_a/s_b (log axis labelled in ratios; bars: ratios tied with the best) and the smoothed
    optimum's ratio (bars: its 95 % interval) against the option. Right: the best configuration's mean metric
    (bars: 95 % CI over its repeats), one series per encoding. Both y ranges hold every point and bar end with
    room to spare (`padded_range`), so none sits on the frame."""
    ratio_title = f"best s_{d.ratio[0]}/s_{d.ratio[1]}" if d.ratio else "best ratio"
    option = plain_text(d.option)
    if all(p.mean is None for p in d.points):
        return empty_figure(f"Across studies: the answer against {option}", "no study has a COMPLETE trial yet")
    fig = make_subplots(rows=1, cols=2, subplot_titles=[ratio_title, f"{d.metric} of the best (mean, 95% CI)"])
    for encoding in sorted({p.encoding for p in d.points}):
        points = [p for p in d.points if p.encoding == encoding]
        with_ratio = [p for p in points if p.ratio is not None]
        if with_ratio:
            ratios = [p.ratio for p in with_ratio]
            lows, highs = [p.ratio_low for p in with_ratio], [p.ratio_high for p in with_ratio]
            fig.add_trace(_series(with_ratio, ratios, lows, highs, f"{encoding}: best ratio"), row=1, col=1)
        smoothed = [p for p in points if p.optimum_ratio is not None]
        if smoothed:
            ratios = [p.optimum_ratio for p in smoothed]
            lows, highs = [p.optimum_low for p in smoothed], [p.optimum_high for p in smoothed]
            trace = _series(smoothed, ratios, lows, highs, f"{encoding}: smoothed optimum (95% CI)")
            fig.add_trace(trace.update(line_dash="dash"), row=1, col=1)
        means, lows, highs = [p.mean for p in points], [p.ci_low for p in points], [p.ci_high for p in points]
        fig.add_trace(_series(points, means, lows, highs, f"{encoding}: {d.metric}"), row=1, col=2)
    ratios = [v for p in d.points for v in (p.ratio, p.ratio_low, p.ratio_high, p.optimum_low, p.optimum_high)]
    ratio_range = padded_range([*ratios, *(p.optimum_ratio for p in d.points)], log=True)
    ticks = ratio_ticks(10 ** ratio_range[0], 10 ** ratio_range[1]) if ratio_range else ([], [])
    fig.update_yaxes(type="log", range=ratio_range, tickvals=ticks[0], ticktext=ticks[1], row=1, col=1)
    values = [v for p in d.points for v in (p.mean, p.ci_low, p.ci_high)]
    fig.update_yaxes(range=padded_range(values), title=d.metric, row=1, col=2)
    fig.update_xaxes(title=option, row=1, col=1)
    fig.update_xaxes(title=option, row=1, col=2)
    fig.update_layout(title=f"Across studies: the answer against {option}")
    return fig
