"""The similarity map of the study's encoding at the best scales beside isotropic scales of the same geometric
mean (only the anisotropy differs); for 3 grid axes, the central plane spanned by the two ratio axes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from afpe.encodings import build_encoding, similarity_map
from afpe.search.repeats import best_configuration
from afpe.search.spec import SearchSpace
from afpe.service.plots.kinds import register_plot
from afpe.service.plots.shared import positions_note

SIMILARITY_DISPLAY_SIZE = {1: 64, 2: 32, 3: 16}  # positions per grid axis of the similarity map


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


@register_plot("similarity", similarity_data)
def similarity_figure(d: SimilarityData) -> go.Figure:
    scales = ", ".join(f"{s:.3g}" for s in d.best_scales)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=[f"best scales ({scales})", f"isotropic ({d.isotropic_scale:.3g} on every axis)"]
    )
    for col, values in ((1, d.best_map), (2, d.isotropic_map)):
        fig.add_trace(
            go.Heatmap(
                z=values,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                showscale=col == 2,
                colorbar_title="cosine",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(
            scaleanchor=f"x{col if col > 1 else ''}",
            autorange="reversed",
            row=1,
            col=col,
            title=d.axis_labels[0] if len(d.axis_labels) == 2 else "",
        )
        fig.update_xaxes(title=d.axis_labels[-1] if d.axis_labels else "", row=1, col=col)
    fig.update_layout(title=f"{d.encoding} similarity to the centre position{positions_note(d.positions)}")
    return fig
