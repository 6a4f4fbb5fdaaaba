"""`afpe` upstream: MONAI (>= 1.6) ships AFPE, added by the paper's authors, as
`monai.networks.blocks.pos_embed_utils.build_fourier_position_embedding(grid_size, embed_dim, spatial_dims, scales)`
and `PatchEmbeddingBlock(pos_embed_type="fourier", pos_embed_kwargs={"scales": [...]})`.

What equals what (kept so by tests/encodings/test_monai_equality.py), for `build_encoding("afpe", grid, dim,
scales=s, scale=c, seed=k, n_tokens=n)`:

- The draw: G = randn(dim / 2, len(grid)) in float32. Ours comes from a private generator seeded k (the global RNG
  untouched), MONAI's from the global CPU RNG, so `torch.manual_seed(k)` just before MONAI's builder draws the same
  G bit for bit. A `PatchEmbeddingBlock` initialises its patch projection from the global RNG before it draws G:
  seeding before the block gives another G (max difference ~2), so seed right before the builder and set the
  block's `position_embeddings` to its result.
- The frequencies: B = G · diag(c · s_j) in float32, both: MONAI's `scales` = `monai_scales(s, c)`, axis j = grid
  axis j (no reordering). The positions: `linspace(0, 1, n_j)` per grid axis, flattened row-major (meshgrid "ij").
- The table: [sin(2π p Bᵀ) ‖ cos(2π p Bᵀ)], all sines then all cosines, dim / 2 each. MONAI encodes the patches
  only: its table equals ours without the extra tokens, `table[:, n:]` (our CLS token sits at position 2..3).
- Precision: ours computes the angles in float64 and rounds the table to float32, MONAI all in float32, so the
  tables are not bit-equal: they differ by float32 rounding of the angles, at most `rounding_bound(B)` =
  (len(grid) + 2) · eps32 · (1 + 2π max_i Σ_j |B_ij|) (measured over 60 random grids and scales: up to 1.1 ·
  eps32 · (1 + 2π max_i Σ_j |B_ij|); 5.7e-5 on an 8³ grid at scales 20, 9.7e-7 on 4² at scales 1).

Positions (`base.POSITIONS`): with normalized positions, MONAI's own, the scales carry over unconverted. Physical
positions put grid axis j's token i at p_j = i · h_j (h_j the token spacing in reference lengths,
`base.physical_spacing`); MONAI's is q_j = i / (n_j - 1), so p_j = h_j (n_j - 1) q_j and B_j p_j = (B_j h_j (n_j - 1))
q_j: MONAI's scale is s_j · h_j · (n_j - 1) (0 on an axis of one token, where every angle is 0 anyway). The table
is then the same up to the same float32 rounding (tests/encodings/test_monai_equality.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from afpe.encodings.base import POSITIONS


def monai_scales(
    scales: Sequence[float],
    scale: float = 1.0,
    positions: str = "normalized",
    grid: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
) -> list[float]:
    """MONAI's per-axis `scales` for afpe `scales` (times the global `scale`) of a study whose tokens sit at
    `positions`. Normalized positions (`linspace(0, 1)` per grid axis) are MONAI's own: c · s_j unchanged.
    Physical positions need the `grid` and the token `spacing` in reference lengths (what `build_encoding` got):
    c · s_j · spacing_j · (grid_j - 1). ValueError for unknown positions or a missing grid or spacing."""
    if positions not in POSITIONS:
        raise ValueError(
            f"positions: {positions!r} has no conversion to MONAI's scales (known: {', '.join(POSITIONS)})"
        )
    if positions == "normalized":
        return [scale * float(s) for s in scales]
    if grid is None or spacing is None or not len(grid) == len(spacing) == len(scales):
        raise ValueError("physical positions need the grid and the token spacing, one value per scale")
    return [scale * float(s) * float(h) * (int(n) - 1) for s, h, n in zip(scales, spacing, grid, strict=True)]


def monai_fourier_arguments(
    grid: Sequence[int],
    dim: int,
    scales: Sequence[float],
    scale: float = 1.0,
    positions: str = "normalized",
    spacing: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of MONAI's `build_fourier_position_embedding` that give afpe's table on `grid` (its
    patch tokens) for the same seed: grid_size, embed_dim, spatial_dims, scales (see the module docstring)."""
    return {
        "grid_size": [int(n) for n in grid],
        "embed_dim": int(dim),
        "spatial_dims": len(grid),
        "scales": monai_scales(scales, scale, positions, grid, spacing),
    }


def rounding_bound(frequencies: torch.Tensor) -> float:
    """The largest difference between afpe's table and MONAI's for frequencies B (dim / 2, len(grid)): float32
    rounding of the angles 2π p·B_i with p in [0, 1], (len(grid) + 2) · eps32 · (1 + 2π max_i Σ_j |B_ij|)."""
    largest = 2 * math.pi * frequencies.detach().abs().sum(dim=1).max().item()
    return (frequencies.shape[1] + 2) * torch.finfo(torch.float32).eps * (1 + largest)
