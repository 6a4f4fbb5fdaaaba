"""Plot data of a study: Optuna FrozenTrials (and the study's spec dict) in, plain dataclasses out.

No Plotly here (rendering lives in `plot_figures.py`), so the numbers are testable on their own.
Scales are the trial params `s_<axis>`; the headline ratio is r = s_a / s_b of the spec's two `ratio`
axes, drawn as log2 r. The searched log2 r range is [log2(low_a / high_b), log2(high_a / low_b)].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from afpe.encodings import build_encoding, similarity_map

PARAM_PREFIX = "s_"
EDGE_FRACTION = 0.05  # an optimum within 5% of the log range from an edge is "at the edge"
SIMILARITY_DISPLAY_SIZE = {1: 64, 2: 32, 3: 16}  # positions per grid axis of the similarity map


@dataclass(frozen=True)
class Axis:
    """A searched scale axis of the spec: log-uniform on [low, high], applied to `grid_axes`."""

    name: str
    grid_axes: tuple[int, ...]
    low: float
    high: float

    @property
    def param(self) -> str:
        return PARAM_PREFIX + self.name


@dataclass(frozen=True)
class StudyView:
    """What the plots need from a spec dict (the `spec` user attr of the Optuna study)."""

    axes: tuple[Axis, ...]
    ratio: tuple[str, str] | None
    direction: str
    metric: str
    encoding: str
    pe_seed: int
    dim: int
    fixed: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: dict) -> StudyView:
        axes = tuple(
            Axis(a["name"], tuple(a["grid_axes"]), float(a["low"]), float(a["high"])) for a in spec.get("axes") or ()
        )
        ratio = spec.get("ratio") or ([a.name for a in axes[:2]] if len(axes) >= 2 else None)
        model = (spec.get("trainer") or {}).get("model") or {}
        return cls(
            axes=axes,
            ratio=tuple(ratio) if ratio else None,
            direction=spec.get("direction") or "maximize",
            metric=spec.get("metric") or "objective",
            encoding=spec.get("encoding") or "afpe",
            pe_seed=int(spec.get("pe_seed") or 0),
            dim=int(model.get("dim") or 192),
            fixed={int(k): float(v) for k, v in (spec.get("fixed") or {}).items()},
        )

    def axis(self, name: str) -> Axis:
        return next(a for a in self.axes if a.name == name)

    @property
    def n_grid_axes(self) -> int:
        return max((*(g for a in self.axes for g in a.grid_axes), *self.fixed), default=-1) + 1


def complete_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials with a finite value."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]


def best_trial(trials: Sequence[FrozenTrial], direction: str) -> FrozenTrial | None:
    done = complete_trials(trials)
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: t.value)


def log2_ratio(params: dict, ratio: tuple[str, str]) -> float | None:
    """log2(s_a / s_b), None when a scale is missing or not positive."""
    a, b = (params.get(PARAM_PREFIX + name) for name in ratio)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return math.log2(a / b)


def searched_ratio_range(view: StudyView) -> tuple[float, float]:
    a, b = (view.axis(name) for name in view.ratio)
    return math.log2(a.low / b.high), math.log2(a.high / b.low)


@dataclass(frozen=True)
class Trend:
    """Per-bin mean and standard deviation of the metric (empty bins dropped)."""

    centers: list[float]
    means: list[float]
    stds: list[float]
    counts: list[int]


def binned_trend(x: Sequence[float], y: Sequence[float], edges: np.ndarray) -> Trend:
    """Mean ± std of y in each bin of x given by `edges` (values on the last edge fall in the last bin)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(index, minlength=len(edges) - 1)
    sums = np.bincount(index, weights=y, minlength=len(edges) - 1)
    squares = np.bincount(index, weights=y * y, minlength=len(edges) - 1)
    kept = counts > 0
    means = sums[kept] / counts[kept]
    stds = np.sqrt(np.maximum(squares[kept] / counts[kept] - means**2, 0.0))
    centers = ((edges[:-1] + edges[1:]) / 2)[kept]
    return Trend(centers.tolist(), means.tolist(), stds.tolist(), counts[kept].astype(int).tolist())


@dataclass(frozen=True)
class RatioData:
    """Metric vs log2(s_a / s_b) over COMPLETE trials, with the best marked and the searched range."""

    ratio: tuple[str, str]
    metric: str
    x: list[float]
    y: list[float]
    numbers: list[int]
    best_index: int | None
    searched: tuple[float, float]
    trend: Trend


def ratio_data(trials: Sequence[FrozenTrial], view: StudyView) -> RatioData:
    if view.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no ratio to plot")
    points = [(log2_ratio(t.params, view.ratio), t) for t in complete_trials(trials)]
    points = [(x, t) for x, t in points if x is not None]
    x = [p[0] for p in points]
    y = [p[1].value for p in points]
    numbers = [p[1].number for p in points]
    best = best_trial([p[1] for p in points], view.direction)
    searched = searched_ratio_range(view)
    n_bins = int(np.clip(round(math.sqrt(len(x))), 3, 20))
    low, high = min([searched[0], *x]), max([searched[1], *x])
    trend = binned_trend(x, y, np.linspace(low, high, n_bins + 1)) if x else Trend([], [], [], [])
    best_index = numbers.index(best.number) if best is not None else None
    return RatioData(view.ratio, view.metric, x, y, numbers, best_index, searched, trend)


@dataclass(frozen=True)
class AxisPoints:
    axis: Axis
    scales: list[float]
    values: list[float]


@dataclass(frozen=True)
class AxesData:
    """Metric vs each scale (log axes), COMPLETE trials only; `best` is the best trial's scales."""

    metric: str
    panels: list[AxisPoints]
    best: dict[str, float] | None


def axes_data(trials: Sequence[FrozenTrial], view: StudyView) -> AxesData:
    done = complete_trials(trials)
    panels = []
    for axis in view.axes:
        kept = [t for t in done if axis.param in t.params]
        panels.append(AxisPoints(axis, [t.params[axis.param] for t in kept], [t.value for t in kept]))
    best = best_trial(done, view.direction)
    return AxesData(view.metric, panels, dict(best.params) if best else None)


@dataclass(frozen=True)
class ContourData:
    """Mean metric on a log10-spaced grid over two scale axes (NaN where no trial fell), plus the points."""

    x_axis: Axis
    y_axis: Axis
    x_centers: list[float]
    y_centers: list[float]
    z: list[list[float | None]]
    points_x: list[float]
    points_y: list[float]
    points_value: list[float]
    metric: str


def contour_data(trials: Sequence[FrozenTrial], view: StudyView, bins: int = 20) -> ContourData:
    if view.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no contour to plot")
    x_axis, y_axis = (view.axis(name) for name in view.ratio)
    done = [t for t in complete_trials(trials) if x_axis.param in t.params and y_axis.param in t.params]
    px = np.array([t.params[x_axis.param] for t in done], dtype=float)
    py = np.array([t.params[y_axis.param] for t in done], dtype=float)
    pv = np.array([t.value for t in done], dtype=float)
    x_edges = np.linspace(math.log10(x_axis.low), math.log10(x_axis.high), bins + 1)
    y_edges = np.linspace(math.log10(y_axis.low), math.log10(y_axis.high), bins + 1)
    sums, _, _ = np.histogram2d(np.log10(px), np.log10(py), bins=(x_edges, y_edges), weights=pv)
    counts, _, _ = np.histogram2d(np.log10(px), np.log10(py), bins=(x_edges, y_edges))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts).T  # rows follow y, columns follow x
    z = [[None if math.isnan(v) else float(v) for v in row] for row in means]
    return ContourData(
        x_axis,
        y_axis,
        (10 ** ((x_edges[:-1] + x_edges[1:]) / 2)).tolist(),
        (10 ** ((y_edges[:-1] + y_edges[1:]) / 2)).tolist(),
        z,
        px.tolist(),
        py.tolist(),
        pv.tolist(),
        view.metric,
    )


@dataclass(frozen=True)
class HistoryData:
    """Objective per COMPLETE trial in trial order and the best value so far."""

    metric: str
    numbers: list[int]
    values: list[float]
    best_so_far: list[float]


def history_data(trials: Sequence[FrozenTrial], view: StudyView) -> HistoryData:
    done = sorted(complete_trials(trials), key=lambda t: t.number)
    values = np.array([t.value for t in done], dtype=float)
    accumulate = np.maximum.accumulate if view.direction == "maximize" else np.minimum.accumulate
    best = accumulate(values).tolist() if len(values) else []
    return HistoryData(view.metric, [t.number for t in done], values.tolist(), best)


@dataclass(frozen=True)
class Curve:
    number: int
    state: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class IntermediateData:
    """Learning curves: the per-epoch intermediate values of every trial that reported any."""

    metric: str
    curves: list[Curve] = field(default_factory=list)


def intermediate_data(trials: Sequence[FrozenTrial], view: StudyView) -> IntermediateData:
    curves = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.intermediate_values:
            steps = sorted(trial.intermediate_values)
            curves.append(Curve(trial.number, trial.state.name, steps, [trial.intermediate_values[s] for s in steps]))
    return IntermediateData(view.metric, curves)


@dataclass(frozen=True)
class SimilarityData:
    """Similarity map of the study's encoding at the best scales vs isotropic scales of the same geometric mean
    (so only the anisotropy differs). For 3 grid axes: the central plane spanned by the two ratio axes."""

    encoding: str
    best_scales: list[float]
    isotropic_scale: float
    best_map: list[list[float]]
    isotropic_map: list[list[float]]
    axis_labels: tuple[str, ...]


def grid_scales(view: StudyView, params: dict) -> list[float]:
    """Per-grid-axis scales from the trial's axis params (an axis sets every grid axis it names); grid axes no
    searched axis drives take the spec's `fixed` scale, else 1.0 (as `StudySpec.scales_for`)."""
    scales = [view.fixed.get(g, 1.0) for g in range(view.n_grid_axes)]
    for axis in view.axes:
        for g in axis.grid_axes:
            scales[g] = float(params[axis.param])
    return scales


def similarity_data(trials: Sequence[FrozenTrial], view: StudyView) -> SimilarityData:
    best = best_trial(trials, view.direction)
    if best is None:
        raise ValueError("no finished trial yet: the similarity map needs the best scales")
    if not view.axes:
        raise ValueError("the study searches no scale axes")
    ndim = view.n_grid_axes
    grid = (SIMILARITY_DISPLAY_SIZE.get(ndim, 8),) * ndim
    scales = grid_scales(view, best.params)
    isotropic = float(np.exp(np.mean(np.log(scales))))
    shown = _shown_grid_axes(view, ndim)
    maps = []
    for per_axis in (scales, [isotropic] * ndim):
        module = build_encoding(view.encoding, grid, view.dim, scales=per_axis, seed=view.pe_seed)
        sims = similarity_map(module, grid).numpy()
        for g in reversed(range(ndim)):
            if g not in shown:
                sims = np.take(sims, grid[g] // 2, axis=g)
        maps.append(np.atleast_2d(sims).tolist())
    labels = _axis_labels(view, shown)
    return SimilarityData(view.encoding, scales, isotropic, maps[0], maps[1], labels)


def _shown_grid_axes(view: StudyView, ndim: int) -> tuple[int, ...]:
    """The two grid axes to display: the first grid axis of each ratio axis (or the first two grid axes)."""
    if ndim <= 2:
        return tuple(range(ndim))
    if view.ratio is not None:
        first = tuple(view.axis(name).grid_axes[0] for name in view.ratio)
        if first[0] != first[1]:
            return tuple(sorted(first))
    return (0, 1)


def _axis_labels(view: StudyView, shown: tuple[int, ...]) -> tuple[str, ...]:
    """'grid axis g (axis name)' for each displayed grid axis."""
    names = {g: a.name for a in view.axes for g in a.grid_axes}
    return tuple(f"grid axis {g} ({names.get(g, 'unsearched')})" for g in shown)


def edge_warnings(trials: Sequence[FrozenTrial], view: StudyView) -> list[str]:
    """Warnings when the best trial's scale (or ratio) lies within EDGE_FRACTION of its searched log range."""
    best = best_trial(trials, view.direction)
    if best is None:
        return []
    warnings = []
    for axis in view.axes:
        value = best.params.get(axis.param)
        if value is not None and _near_edge(math.log(value), math.log(axis.low), math.log(axis.high)):
            warnings.append(
                f"best {axis.param}={value:.4g} lies at the edge of its searched range [{axis.low:g}, {axis.high:g}]"
            )
    if view.ratio is not None:
        x = log2_ratio(best.params, view.ratio)
        low, high = searched_ratio_range(view)
        if x is not None and _near_edge(x, low, high):
            warnings.append(
                f"best ratio {view.ratio[0]}/{view.ratio[1]}={2**x:.4g} lies at the edge of the searchable ratio range"
                f" [{2**low:.4g}, {2**high:.4g}]: widen the axes to bracket it"
            )
    return warnings


def _near_edge(value: float, low: float, high: float) -> bool:
    margin = EDGE_FRACTION * (high - low)
    return value <= low + margin or value >= high - margin
