"""Similarity-map pages of positional encodings (`afpe encodings plot`): panel data first, Plotly rendering apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from afpe.encodings import build_encoding, similarity_map
from afpe.encodings.base import field_of_view, physical_spacing

AXIS_NAMES = {1: ("x",), 2: ("rows", "cols"), 3: ("axis 0", "axis 1", "axis 2")}


@dataclass(frozen=True)
class SimilarityPanel:
    """One 1-D or 2-D view of a similarity map: `values` over the named axes."""

    title: str
    values: np.ndarray
    axes: tuple[str, ...]


def similarity_panels(
    encoding: str,
    grid: Sequence[int],
    *,
    dim: int = 192,
    scales: Sequence[float] | None = None,
    scale: float = 1.0,
    seed: int = 0,
    metric: str = "cosine",
    spacing: Sequence[float] | None = None,
    unit: str = "unit",
    reference_length: float | None = None,
) -> list[SimilarityPanel]:
    """1 axis: the profile. 2 axes: the map beside `fourier` and `sincos` at the same grid.
    3 axes: the three central planes through the centre position. With `spacing` (the token spacing per axis in
    `unit`s) the tokens sit at physical positions over `reference_length` (`base.physical_spacing`), and the
    titles and axes name the unit."""
    grid = tuple(grid)
    physical = None if spacing is None else physical_spacing(grid, tuple(spacing), reference_length)
    module = build_encoding(encoding, grid, dim, scales=scales, scale=scale, seed=seed, spacing=physical)
    sims = similarity_map(module, grid, metric=metric).numpy()
    names = AXIS_NAMES[len(grid)]
    title = _label(encoding, scales, scale)
    if spacing is not None:
        length = reference_length or max(field_of_view(grid, tuple(spacing)))
        names = tuple(f"{name} ({h:g} {unit} per token)" for name, h in zip(names, spacing, strict=True))
        title = f"{title} per {length:g} {unit}"
    if len(grid) < 3:
        panels = [SimilarityPanel(title, sims, names)]
        if len(grid) == 2:
            for other in ("fourier", "sincos"):
                if other != encoding:
                    reference = build_encoding(other, grid, dim, scale=scale, seed=seed, spacing=physical)
                    panels.append(
                        SimilarityPanel(
                            _label(other, None, scale), similarity_map(reference, grid, metric=metric).numpy(), names
                        )
                    )
        return panels
    center = tuple(n // 2 for n in grid)
    planes = []
    for fixed in reversed(range(3)):
        kept = tuple(names[i] for i in range(3) if i != fixed)
        plane = np.take(sims, center[fixed], axis=fixed)
        planes.append(SimilarityPanel(f"{title}, {names[fixed]} = {center[fixed]}", plane, kept))
    return planes


def similarity_figure(panels: Sequence[SimilarityPanel]) -> go.Figure:
    """Heatmaps (2-D panels) or profiles (1-D) side by side on one colour scale."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p.title for p in panels])
    for col, panel in enumerate(panels, start=1):
        if panel.values.ndim == 1:
            fig.add_trace(go.Scatter(y=panel.values, mode="lines+markers", name=panel.title), row=1, col=col)
            fig.update_xaxes(title_text=panel.axes[0], row=1, col=col)
        else:
            fig.add_trace(
                go.Heatmap(
                    z=panel.values,
                    zmin=-1,
                    zmax=1,
                    colorscale="RdBu_r",
                    showscale=col == len(panels),
                    colorbar={"title": "similarity"},
                ),
                row=1,
                col=col,
            )
            fig.update_xaxes(title_text=panel.axes[1], constrain="domain", row=1, col=col)
            fig.update_yaxes(
                title_text=panel.axes[0], autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col
            )
    fig.update_layout(
        title="Similarity of each position's encoding with the centre's", height=480, width=max(520, 420 * len(panels))
    )
    return fig


def _label(encoding: str, scales: Sequence[float] | None, scale: float) -> str:
    if scales is not None:
        return f"{encoding}, scales {', '.join(f'{s:g}' for s in scales)}"
    return f"{encoding}, scale {scale:g}"
