"""Plot data of a study: Optuna FrozenTrials and the study's `SearchSpace` in, plain dataclasses out.

No Plotly here (rendering lives in `figures.py`), so the numbers are testable on their own, as Optuna's
`_get_*_info` functions are. Scales are the trial params `s_<axis>`; the headline ratio is r = s_a / s_b of
the spec's two `ratio` axes, drawn as log2 r. The searched log2 r range is [log2(low_a / high_b),
log2(high_a / low_b)]. Which trials count follows `afpe.search.analysis`; the best is the study's answer
(`afpe.search.repeats`: the best mean over repeats, or the best trial when there are none).

Payloads stay bounded however many trials a study has (issue 13 item 7): a scatter shows at most MAX_POINTS
markers (`shown_points`: the best quarter and the marked best exactly, an even sample of the rest), learning
curves past MAX_CURVES are quantile bands over every curve plus the BEST_CURVES best trials' curves, and the
timeline at most MAX_BARS bars (every FAIL and unfinished trial first). Trends, bands and counts are computed
over every trial.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from afpe.encodings import build_encoding, similarity_map
from afpe.search.analysis import FINISHED_STATES, complete_trials, log2_ratio, ratio_range, search_trials
from afpe.search.repeats import best_configuration, study_answer
from afpe.search.spec import AxisSpec, SearchSpace
from afpe.search.surface import smoothed_optimum

SIMILARITY_DISPLAY_SIZE = {1: 64, 2: 32, 3: 16}  # positions per grid axis of the similarity map
MAX_POINTS = 2_000  # markers per scatter
MAX_CURVES = 100  # learning curves drawn one by one; past it: quantile bands and the best curves
BEST_CURVES = 20  # the best trials' curves drawn over the bands
BAND_QUANTILES = (0.1, 0.5, 0.9)
MAX_BARS = 2_000  # bars of the timeline


def shown_points(
    values: Sequence[float], direction: str, always: Iterable[int] = (), cap: int = MAX_POINTS
) -> list[int]:
    """Indices (ascending) of the points a scatter of `values` shows: every one when there are at most `cap`;
    else the indices `always`, the cap // 4 best values in `direction` ('maximize' or 'minimize') and evenly
    spaced ones of the others, `cap` in all (more when `always` is longer)."""
    n = len(values)
    if n <= cap:
        return list(range(n))
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    if direction == "maximize":
        order = order[::-1]
    kept = set(always) | set(order[: cap // 4].tolist())
    rest = np.setdiff1d(np.arange(n), np.fromiter(kept, dtype=int, count=len(kept)))
    spare = max(cap - len(kept), 0)
    kept.update(rest[np.linspace(0, len(rest) - 1, spare).astype(int)].tolist() if spare else [])
    return sorted(kept)


def searched_ratio_range(space: SearchSpace) -> tuple[float, float]:
    """The searched range of log2(s_a / s_b); ValueError when the space has no ratio."""
    low, high = ratio_range(space)
    return math.log2(low), math.log2(high)


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
class RepeatSpread:
    """A repeated configuration at log2 ratio `x`: the mean of its `n` runs and their 95 % interval."""

    x: float
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class RatioData:
    """Metric vs log2(s_a / s_b) over COMPLETE trials (repeats included, at their configuration's ratio), with
    the best marked, each repeated configuration's mean and interval, the searched range, and the smoothed
    optimum's ratio and 95 % interval (`search/surface.py`)."""

    ratio: tuple[str, str]
    metric: str
    x: list[float]
    y: list[float]
    numbers: list[int]
    best_index: int | None
    searched: tuple[float, float]
    trend: Trend
    repeats: list[RepeatSpread] = field(default_factory=list)
    optimum: tuple[float, float, float] | None = None  # smoothed optimum: log2 ratio, 95 % interval low, high
    total: int = 0  # COMPLETE trials with a ratio (the trend's); x, y and numbers hold `shown_points` of them
    positions: str | None = None  # physical positions: how a scale reads, its unit named (`SearchSpace`)


def ratio_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> RatioData:
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no ratio to plot")
    points = [(log2_ratio(t.params, space.ratio), t) for t in complete_trials(trials)]
    points = [(x, t) for x, t in points if x is not None]
    x = [p[0] for p in points]
    y = [p[1].value for p in points]
    numbers = [p[1].number for p in points]
    answer = study_answer(trials, space.direction, space.ratio)
    searched = searched_ratio_range(space)
    n_bins = int(np.clip(round(math.sqrt(len(x))), 3, 20))
    low, high = min([searched[0], *x]), max([searched[1], *x])
    trend = binned_trend(x, y, np.linspace(low, high, n_bins + 1)) if x else Trend([], [], [], [])
    best_index = numbers.index(answer.best.number) if answer and answer.best.number in numbers else None
    shown = shown_points(y, space.direction, [] if best_index is None else [best_index])
    if best_index is not None:
        best_index = shown.index(best_index)
    spread = [
        RepeatSpread(math.log2(e.ratio), e.mean, e.ci[0], e.ci[1], e.n)
        for e in (answer.estimates if answer else [])
        if e.ci is not None and e.ratio is not None
    ]
    smoothed = smoothed_optimum(trials, space)
    optimum = None
    if smoothed is not None and smoothed.ratio is not None and smoothed.ci is not None:
        optimum = (math.log2(smoothed.ratio), math.log2(smoothed.ci[0]), math.log2(smoothed.ci[1]))
    x, y, numbers = ([seq[i] for i in shown] for seq in (x, y, numbers))
    return RatioData(
        space.ratio,
        space.metric,
        x,
        y,
        numbers,
        best_index,
        searched,
        trend,
        spread,
        optimum,
        len(points),
        space.positions_note,
    )


@dataclass(frozen=True)
class AxisPoints:
    axis: AxisSpec
    scales: list[float]
    values: list[float]
    total: int = 0  # trials with this scale; `shown_points` of them are kept


@dataclass(frozen=True)
class AxesData:
    """Metric vs each scale (log axes), COMPLETE trials only; `best` is the best trial's scales."""

    metric: str
    panels: list[AxisPoints]
    best: dict[str, float] | None


def axes_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> AxesData:
    done = complete_trials(trials)
    best = best_configuration(trials, space.direction)
    panels = []
    for axis in space.axes:
        having = [t for t in done if axis.param in t.params]
        always = [i for i, t in enumerate(having) if best is not None and t.number == best.number]
        kept = [having[i] for i in shown_points([t.value for t in having], space.direction, always)]
        panels.append(AxisPoints(axis, [t.params[axis.param] for t in kept], [t.value for t in kept], len(having)))
    return AxesData(space.metric, panels, dict(best.params) if best else None)


@dataclass(frozen=True)
class ContourData:
    """Mean metric on a log10-spaced grid over two scale axes (NaN where no trial fell), plus the points."""

    x_axis: AxisSpec
    y_axis: AxisSpec
    x_centers: list[float]
    y_centers: list[float]
    z: list[list[float | None]]
    points_x: list[float]
    points_y: list[float]
    points_value: list[float]
    metric: str
    total: int = 0  # trials in the grid; the points are `shown_points` of them


def contour_data(trials: Sequence[FrozenTrial], space: SearchSpace, bins: int = 20) -> ContourData:
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no contour to plot")
    x_axis, y_axis = (space.axis(name) for name in space.ratio)
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
    shown = shown_points(pv, space.direction)
    return ContourData(
        x_axis,
        y_axis,
        (10 ** ((x_edges[:-1] + x_edges[1:]) / 2)).tolist(),
        (10 ** ((y_edges[:-1] + y_edges[1:]) / 2)).tolist(),
        z,
        px[shown].tolist(),
        py[shown].tolist(),
        pv[shown].tolist(),
        space.metric,
        len(done),
    )


@dataclass(frozen=True)
class HistoryData:
    """Objective per COMPLETE trial in trial order and the best value so far, at `shown_points` of the `total`
    trials: every trial that improved the best is kept, so the best-so-far steps are exact."""

    metric: str
    numbers: list[int]
    values: list[float]
    best_so_far: list[float]
    total: int = 0


def history_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> HistoryData:
    done = sorted(complete_trials(trials), key=lambda t: t.number)
    values = np.array([t.value for t in done], dtype=float)
    accumulate = np.maximum.accumulate if space.direction == "maximize" else np.minimum.accumulate
    best = accumulate(values) if len(values) else values
    improved = np.flatnonzero(np.diff(best, prepend=np.nan) != 0).tolist()  # NaN != x: the first one too
    shown = shown_points(values, space.direction, [*improved, len(values) - 1] if len(values) else [])
    return HistoryData(
        space.metric, [done[i].number for i in shown], values[shown].tolist(), best[shown].tolist(), len(done)
    )


@dataclass(frozen=True)
class Curve:
    number: int
    state: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class Bands:
    """Per step, the BAND_QUANTILES of the intermediate values of every trial that reported that step."""

    steps: list[int]
    quantiles: list[list[float]]  # one list per quantile, aligned with steps
    counts: list[int]


@dataclass(frozen=True)
class IntermediateData:
    """Learning curves of the `total` trials that reported any: every curve when there are at most MAX_CURVES;
    else the curves of the BEST_CURVES best COMPLETE trials (the study's best among them) over `bands`
    computed from every curve."""

    metric: str
    curves: list[Curve] = field(default_factory=list)
    bands: Bands | None = None
    total: int = 0


def intermediate_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> IntermediateData:
    reported = sorted((t for t in trials if t.intermediate_values), key=lambda t: t.number)
    shown = reported
    bands = None
    if len(reported) > MAX_CURVES:
        ranked = sorted(complete_trials(reported), key=lambda t: t.value, reverse=space.direction == "maximize")
        best = best_configuration(trials, space.direction)
        numbers = {t.number for t in ranked[:BEST_CURVES]} | ({best.number} if best else set())
        shown = [t for t in reported if t.number in numbers]
        bands = _bands(reported)
    curves = []
    for trial in shown:
        steps = sorted(trial.intermediate_values)
        curves.append(Curve(trial.number, trial.state.name, steps, [trial.intermediate_values[s] for s in steps]))
    return IntermediateData(space.metric, curves, bands, len(reported))


def _bands(trials: Sequence[FrozenTrial]) -> Bands:
    """BAND_QUANTILES per step over the finite intermediate values of `trials`."""
    steps = np.fromiter((s for t in trials for s in t.intermediate_values), dtype=float)
    values = np.fromiter((v for t in trials for v in t.intermediate_values.values()), dtype=float)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    order = np.lexsort((values, steps))
    steps, values = steps[order], values[order]
    unique, starts, counts = np.unique(steps, return_index=True, return_counts=True)
    quantiles = [
        [float(np.quantile(values[a : a + c], q)) for a, c in zip(starts, counts, strict=True)] for q in BAND_QUANTILES
    ]
    return Bands([int(s) for s in unique], quantiles, counts.tolist())


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
    positions: str | None = None  # physical positions: how a scale reads, its unit named (`SearchSpace`)


def similarity_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> SimilarityData:
    best = best_configuration(trials, space.direction)
    if best is None:
        raise ValueError("no finished trial yet: the similarity map needs the best scales")
    if not space.axes:
        raise ValueError("the study searches no scale axes")
    ndim = space.ndim
    grid = (SIMILARITY_DISPLAY_SIZE.get(ndim, 8),) * ndim
    scales = space.scales_for(best.params)
    isotropic = float(np.exp(np.mean(np.log(scales))))
    shown = _shown_grid_axes(space, ndim)
    maps = []
    spacing = _display_spacing(space, grid)
    for per_axis in (scales, [isotropic] * ndim):
        module = build_encoding(space.encoding, grid, space.dim, scales=per_axis, seed=space.pe_seed, spacing=spacing)
        sims = similarity_map(module, grid).numpy()
        for g in reversed(range(ndim)):
            if g not in shown:
                sims = np.take(sims, grid[g] // 2, axis=g)
        maps.append(np.atleast_2d(sims).tolist())
    labels = _axis_labels(space, shown)
    return SimilarityData(space.encoding, scales, isotropic, maps[0], maps[1], labels, space.positions_note)


def _display_spacing(space: SearchSpace, grid: tuple[int, ...]) -> tuple[float, ...] | None:
    """The display grid's spacing in reference lengths: None (normalized, [0, 1] per axis as the study's tokens),
    or with physical positions the study's first-to-last token span per axis, as many display points over it."""
    if space.spacing is None or space.grid is None:
        return None
    return tuple(h * max(g - 1, 1) / (n - 1) for h, g, n in zip(space.spacing, space.grid, grid, strict=True))


def _shown_grid_axes(space: SearchSpace, ndim: int) -> tuple[int, ...]:
    """The two grid axes to display: the first grid axis of each ratio axis (or the first two grid axes)."""
    if ndim <= 2:
        return tuple(range(ndim))
    if space.ratio is not None:
        first = tuple(space.axis(name).grid_axes[0] for name in space.ratio)
        if first[0] != first[1]:
            return tuple(sorted(first))
    return (0, 1)


def _axis_labels(space: SearchSpace, shown: tuple[int, ...]) -> tuple[str, ...]:
    """'grid axis g (axis name)' for each displayed grid axis."""
    names = {g: a.name for a in space.axes for g in a.grid_axes}
    return tuple(f"grid axis {g} ({names.get(g, 'unsearched')})" for g in shown)


@dataclass(frozen=True)
class ImportanceData:
    """How much each scale matters to the metric: Optuna's PED-ANOVA importances (normalised to sum 1) over
    the COMPLETE search trials, least important first."""

    metric: str
    params: list[str]
    importances: list[float]
    n: int


def importance_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> ImportanceData:
    """`optuna.importance.get_param_importances` with the PED-ANOVA evaluator (no model fitted, so it stays
    fast at 50,000 trials where fANOVA fits 64 trees) on a throw-away in-memory study holding the study's
    COMPLETE search trials. ValueError with no axis or fewer than 2 such trials."""
    done = [t for t in complete_trials(search_trials(trials)) if all(a.param in t.params for a in space.axes)]
    if not space.axes or len(done) < 2:
        raise ValueError("importance needs a searched axis and at least 2 complete trials")
    # through the public storage API: `study.add_trials` validates each trial again (twice as slow)
    storage = optuna.storages.InMemoryStorage()
    study_id = storage.create_new_study([optuna.study.StudyDirection[space.direction.upper()]], "importance")
    for trial in done:
        storage.create_new_trial(study_id, template_trial=trial)
    study = optuna.load_study(study_name="importance", storage=storage)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    importances = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=[a.param for a in space.axes]
    )
    ordered = sorted(importances.items(), key=lambda item: item[1])
    return ImportanceData(space.metric, [k for k, _ in ordered], [float(v) for _, v in ordered], len(done))


@dataclass(frozen=True)
class TimelineBar:
    number: int
    state: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class TimelineData:
    """When each trial ran (start to end; a running trial ends now), with its state: concurrency, ASHA's
    stops and failures over time. `bars` are at most MAX_BARS of the `total` trials that started."""

    bars: list[TimelineBar]
    total: int = 0


def timeline_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> TimelineData:
    """The trials that started, in number order: every one when there are at most MAX_BARS; else the unfinished
    and FAIL ones first (the latest when they are too many), then evenly spaced others. ValueError when none
    has started."""
    started = sorted((t for t in trials if t.datetime_start is not None), key=lambda t: t.number)
    if not started:
        raise ValueError("no trial has started yet")
    shown = started
    if len(started) > MAX_BARS:
        notable = [i for i, t in enumerate(started) if t.state not in FINISHED_STATES][-MAX_BARS:]
        rest = np.setdiff1d(np.arange(len(started)), notable)
        spare = MAX_BARS - len(notable)
        even = rest[np.linspace(0, len(rest) - 1, spare).astype(int)].tolist() if spare else []
        shown = [started[i] for i in sorted({*notable, *even})]
    now = dt.datetime.now()  # Optuna's datetimes are naive local time
    bars = [TimelineBar(t.number, t.state.name, t.datetime_start, t.datetime_complete or now) for t in shown]
    return TimelineData(bars, len(started))
