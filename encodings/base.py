"""Shared pieces of every positional encoding: validated arguments, token positions, the base module."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

MAX_AXES = 3

#: Where tokens sit (`positions`): "normalized" = `linspace(0, 1, n)` per grid axis (the default, MONAI's own);
#: "physical" = index · spacing_j, the token spacing in physical units divided by a reference length.
POSITIONS = ("normalized", "physical")


@dataclass(frozen=True)
class EncodingArgs:
    """The validated arguments of `build_encoding`; every encoding is built from one of these."""

    grid: tuple[int, ...]
    dim: int
    scales: tuple[float, ...] | None = None
    scale: float = 1.0
    n_tokens: int = 0
    seed: int = 0
    temperature: float = 10000.0
    spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.grid) <= MAX_AXES:
            raise ValueError(f"grid must have 1 to {MAX_AXES} axes, got {len(self.grid)}: {self.grid}")
        if any(not _is_int(n) or n < 1 for n in self.grid):
            raise ValueError(f"every grid axis must be an integer >= 1, got {self.grid}")
        if not _is_int(self.dim) or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")
        if not _is_int(self.n_tokens) or self.n_tokens < 0:
            raise ValueError(f"n_tokens must be an integer >= 0, got {self.n_tokens!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not math.isfinite(self.scale) or self.scale < 0:
            raise ValueError(f"scale must be a finite number >= 0, got {self.scale!r}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if self.scales is not None:
            if len(self.scales) != len(self.grid):
                raise ValueError(
                    f"scales must have one value per grid axis ({len(self.grid)} for grid {self.grid}), "
                    f"got {len(self.scales)}: {self.scales}"
                )
            if any(not math.isfinite(s) or s < 0 for s in self.scales):
                raise ValueError(f"scales must be finite numbers >= 0, got {self.scales}")
        if self.spacing is not None:
            if len(self.spacing) != len(self.grid):
                raise ValueError(
                    f"spacing must have one value per grid axis ({len(self.grid)} for grid {self.grid}), "
                    f"got {len(self.spacing)}: {self.spacing}"
                )
            if any(not math.isfinite(h) or h <= 0 for h in self.spacing):
                raise ValueError(f"spacing must be finite numbers > 0, got {self.spacing}")

    @property
    def n_positions(self) -> int:
        return math.prod(self.grid)

    def generator(self) -> torch.Generator:
        """A private generator: the same seed gives the same draw in any process, the global RNG untouched."""
        return torch.Generator().manual_seed(self.seed)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def grid_positions(grid: tuple[int, ...], spacing: tuple[float, ...] | None = None) -> torch.Tensor:
    """Token positions (prod(grid), d) in float32, flattened row-major; the one place both kinds are computed.

    Normalized (`spacing` None): `linspace(0, 1, n)` per axis. Physical: p_j = i_j · spacing_j (computed in
    float64), the token spacing in reference lengths, origin at the first token's centre: token centres
    measured from the volume's edge, (i + 1/2) · spacing, differ by a constant shift, which leaves every relative
    position (the kernel γ(p)·γ(q)) unchanged and keeps MONAI's `linspace` table reachable (`upstream.py`)."""
    if spacing is None:
        axes = [torch.linspace(0.0, 1.0, n) for n in grid]
    else:
        axes = [(torch.arange(n, dtype=torch.float64) * h).float() for n, h in zip(grid, spacing, strict=True)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def field_of_view(grid: tuple[int, ...], spacing: tuple[float, ...]) -> tuple[float, ...]:
    """The extent the tokens cover per axis, grid_j · spacing_j (in the spacing's units)."""
    return tuple(n * h for n, h in zip(grid, spacing, strict=True))


def physical_spacing(
    grid: tuple[int, ...], spacing: tuple[float, ...], reference_length: float | None = None
) -> tuple[float, ...]:
    """The token spacing in reference lengths, spacing_j / L, that `grid_positions` takes for physical positions.

    `spacing` is the distance between neighbouring token centres per axis in the data's units. L is
    `reference_length` (same units) or, when None, the field of view's largest extent max_j grid_j · spacing_j:
    a cubic isotropic grid of n tokens then spans [0, (n - 1) / n], about the normalized [0, 1], so the scales
    searched with normalized positions stay sensible. A fixed `reference_length` makes a scale mean "cycles per
    L" across datasets whatever their spacing and field of view (the default L follows the field of view).
    ValueError for a spacing or reference length that is not finite and > 0."""
    if len(spacing) != len(grid) or any(not math.isfinite(h) or h <= 0 for h in spacing):
        raise ValueError(f"spacing needs one finite value > 0 per grid axis {tuple(grid)}, got {tuple(spacing)}")
    if reference_length is None:
        reference_length = max(field_of_view(grid, spacing))
    if not math.isfinite(reference_length) or reference_length <= 0:
        raise ValueError(f"reference_length must be a finite number > 0, got {reference_length!r}")
    return tuple(h / reference_length for h in spacing)


def grid_indices(grid: tuple[int, ...]) -> torch.Tensor:
    """Integer positions (prod(grid), d) as floats, flattened row-major."""
    axes = [torch.arange(n, dtype=torch.float32) for n in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def token_positions(args: EncodingArgs) -> torch.Tensor:
    """Extra tokens first, at `linspace(2, 3, n)` · far on every axis, then the grid (`grid_positions`). far is
    the grid's largest coordinate (1 for normalized positions; 1 too when every axis has one token), so the extra
    tokens lie outside the grid and scale with it: positions · frequencies is unchanged by spacing · k with
    scales / k, extra tokens included."""
    grid = grid_positions(args.grid, args.spacing)
    far = 1.0 if args.spacing is None else float(grid.max()) or 1.0
    extra = (torch.linspace(2.0, 3.0, args.n_tokens) * far).unsqueeze(1).expand(-1, len(args.grid))
    return torch.cat([extra, grid])


class PositionalEncoding(nn.Module):
    """Calling the module with no argument returns the encoding, shape (1, n_tokens + prod(grid), dim).

    `name` is the registry name; `scale_search` says what a scale search can tune: "per_axis" (one scale per grid
    axis), "isotropic" (one global scale) or "none"."""

    name: ClassVar[str]
    scale_search: ClassVar[Literal["none", "isotropic", "per_axis"]] = "none"

    def __init__(self, args: EncodingArgs) -> None:
        super().__init__()
        self.check_dim(args.dim, len(args.grid))
        self.grid = args.grid
        self.dim = args.dim
        self.n_tokens = args.n_tokens

    @classmethod
    def check_dim(cls, dim: int, n_axes: int) -> None:
        """ValueError (naming the widths allowed) when this encoding cannot be `dim` wide on `n_axes` grid axes;
        any width is allowed here. A study spec asks this before any trial builds the encoding."""

    def forward(self) -> torch.Tensor:  # pragma: no cover - every encoding overrides it
        raise NotImplementedError
