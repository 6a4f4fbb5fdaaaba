"""The similarity map of the study's encoding at the answer's scales beside isotropic scales of the same geometric
mean (only the anisotropy differs), on the study's own token grid (its positions: normalized, or physical with the
study's token spacing), its axes named as the task names them and placed in token indices, or in the task's units
with physical positions. For 3 grid axes: the plane through the centre token spanned by the two ratio axes. An
imported study of a task not registered here has no known grid: a display grid of normalized positions, said so."""

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
from afpe.service.plots.plain_text import plain_text
from afpe.service.plots.shared import positions_note

DISPLAY_SIZE = {1: 64, 2: 32, 3: 16}  # positions per grid axis when the study's token grid is unknown


@dataclass(frozen=True)
class SimilarityData:
    """Cosine similarity of every token of the shown plane to the centre token (`centre`, index per grid axis of
    `grid`), at the answer's scales vs isotropic scales of the same geometric mean. Maps are rows x columns =
    the first x the second shown axis; `coordinates` place their tokens (token index, or position in `units`)."""

    encoding: str
    best_scales: list[float]
    isotropic_scale: float
    best_map: list[list[float]]
    isotropic_map: list[list[float]]
    axis_labels: tuple[str, ...]
    coordinates: tuple[list[float], ...] = ()
    grid: tuple[int, ...] = ()
    centre: tuple[int, ...] = ()
    grid_note: str = ""  # whose grid: the study's, or a display grid of an unknown task
    positions: str | None = None  # physical positions: how a scale reads, its unit named (`SearchSpace`)


def similarity_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> SimilarityData:
    best = best_configuration(trials, space.direction)
    if best is None:
        raise ValueError("no finished trial yet: the similarity map needs the best scales")
    if not space.axes:
        raise ValueError("the study searches no scale axes")
    ndim = space.ndim
    known = space.grid is not None and len(space.grid) == ndim
    grid = tuple(space.grid) if known else (DISPLAY_SIZE.get(ndim, 8),) * ndim
    centre = tuple(n // 2 for n in grid)
    scales = space.scales_for(best.params)
    isotropic = float(np.exp(np.mean(np.log(scales))))
    shown = _shown_grid_axes(space, ndim)
    maps = []
    for per_axis in (scales, [isotropic] * ndim):
        spacing = space.spacing if known else None
        module = build_encoding(space.encoding, grid, space.dim, scales=per_axis, seed=space.pe_seed, spacing=spacing)
        sims = similarity_map(module, grid, centre).numpy()
        for g in reversed(range(ndim)):
            if g not in shown:
                sims = np.take(sims, centre[g], axis=g)
        maps.append(np.atleast_2d(sims).tolist())
    step = space.token_spacing if known and space.token_spacing else None
    coordinates = tuple([i * (step[g] if step else 1.0) for i in range(grid[g])] for g in shown)
    size = " × ".join(map(str, grid))
    note = f"the study's {size} token grid" if known else f"a {size} display grid (task unknown here: no token grid)"
    return SimilarityData(
        encoding=space.encoding,
        best_scales=scales,
        isotropic_scale=isotropic,
        best_map=maps[0],
        isotropic_map=maps[1],
        axis_labels=_axis_labels(space, shown, known),
        coordinates=coordinates,
        grid=grid,
        centre=centre,
        grid_note=note,
        positions=space.positions_note,
    )


def _shown_grid_axes(space: SearchSpace, ndim: int) -> tuple[int, ...]:
    """The two grid axes to display: the first grid axis of each ratio axis (or the first two grid axes)."""
    if ndim <= 2:
        return tuple(range(ndim))
    if space.ratio is not None:
        first = tuple(space.axis(name).grid_axes[0] for name in space.ratio)
        if first[0] != first[1]:
            return tuple(sorted(first))
    return (0, 1)


def _axis_labels(space: SearchSpace, shown: tuple[int, ...], known: bool) -> tuple[str, ...]:
    """Each shown grid axis by the task's name for it, its searched scale and its unit: 'd0 (token; scale s_d0)',
    'x (mm; scale s_x)'; an unknown task's 'grid axis g (scale s_<axis>)' over normalized positions."""
    scale = {g: a.param for a in space.axes for g in a.grid_axes}
    labels = []
    for g in shown:
        driven = f"scale {scale[g]}" if g in scale else f"fixed scale {space.fixed.get(g, 1.0):g}"
        if not known or space.axis_names is None:
            labels.append(f"grid axis {g} (position 0 to 1; {driven})")
        else:
            unit = space.units[g] if space.units and space.token_spacing else "token"
            labels.append(f"{space.axis_names[g]} ({unit}; {driven})")
    return tuple(labels)


@register_plot("similarity", similarity_data)
def similarity_figure(d: SimilarityData) -> go.Figure:
    scales = ", ".join(f"{s:.3g}" for s in d.best_scales)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[f"answer's scales ({scales})", f"isotropic ({d.isotropic_scale:.3g} on every axis)"],
        horizontal_spacing=0.15,
    )
    columns = d.coordinates[-1] if d.coordinates else None
    rows = d.coordinates[0] if len(d.coordinates) == 2 else None
    for col, values in ((1, d.best_map), (2, d.isotropic_map)):
        fig.add_trace(
            go.Heatmap(
                x=columns,
                y=rows,
                z=values,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                showscale=col == 2,
                colorbar_title="cosine",
                hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(
            scaleanchor=f"x{col if col > 1 else ''}",
            autorange="reversed",
            constrain="domain",
            row=1,
            col=col,
            title=plain_text(d.axis_labels[0]) if len(d.axis_labels) == 2 else "",
        )
        fig.update_xaxes(
            title=plain_text(d.axis_labels[-1]) if d.axis_labels else "", constrain="domain", row=1, col=col
        )
    centre = ", ".join(map(str, d.centre))
    title = f"{d.encoding} similarity to the token ({centre}), on {d.grid_note}"
    fig.update_layout(title=title + positions_note(d.positions))
    return fig
