"""Similarity maps (the AFPE paper's Fig. 1): how alike each grid position's encoding is to the centre's."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from afpe.encodings.base import grid_positions

METRICS = ("cosine", "dot")


def similarity_map(
    encoding: torch.Tensor | nn.Module,
    grid: Sequence[int],
    center: Sequence[int] | None = None,
    metric: str = "cosine",
) -> torch.Tensor:
    """sim(γ(p), γ(c)) for every grid position p, shape `grid`.

    `encoding` is a module of `afpe.encodings` or its output, (1, n_tokens + N, D) or (n_tokens + N, D);
    leading extra tokens are dropped. `center` defaults to (n // 2 for n in grid).
    """
    grid = tuple(grid)
    table = encoding() if isinstance(encoding, nn.Module) else encoding
    table = table.detach().float().reshape(-1, table.shape[-1])
    n_positions = math.prod(grid)
    if table.shape[0] < n_positions:
        raise ValueError(f"encoding has {table.shape[0]} rows, fewer than the {n_positions} of grid {grid}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    table = table[-n_positions:]
    index = _flat_index(grid, _center(grid, center))
    if metric == "cosine":
        sims = F.cosine_similarity(table, table[index].unsqueeze(0), dim=1)
    else:
        sims = table @ table[index]
    return sims.reshape(grid)


def fourier_similarity(
    grid: Sequence[int], scales: Sequence[float], center: Sequence[int] | None = None
) -> torch.Tensor:
    """Expected cosine similarity of Fourier features with B[:, j] ~ N(0, s_j²):
    exp(−2π² Σ_j s_j² Δp_j²), positions in [0, 1] per axis; shape `grid`."""
    grid = tuple(grid)
    if len(scales) != len(grid):
        raise ValueError(f"scales must have one value per grid axis ({len(grid)}), got {len(scales)}")
    positions = grid_positions(grid)
    delta = positions - positions[_flat_index(grid, _center(grid, center))]
    variance = torch.tensor([float(s) ** 2 for s in scales])
    return torch.exp(-2 * math.pi**2 * (delta**2 * variance).sum(dim=1)).reshape(grid)


def _center(grid: tuple[int, ...], center: Sequence[int] | None) -> tuple[int, ...]:
    if center is None:
        return tuple(n // 2 for n in grid)
    center = tuple(center)
    if len(center) != len(grid) or any(not 0 <= c < n for c, n in zip(center, grid, strict=True)):
        raise ValueError(f"center must be an index inside grid {grid}, got {center}")
    return center


def _flat_index(grid: tuple[int, ...], index: tuple[int, ...]) -> int:
    flat = 0
    for i, n in zip(index, grid, strict=True):
        flat = flat * n + i
    return flat
