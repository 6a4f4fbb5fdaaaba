"""Shared pieces of every positional encoding: validated arguments, token positions, the base module."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

MAX_AXES = 3


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

    @property
    def n_positions(self) -> int:
        return math.prod(self.grid)

    def generator(self) -> torch.Generator:
        """A private generator: the same seed gives the same draw in any process, the global RNG untouched."""
        return torch.Generator().manual_seed(self.seed)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def grid_positions(grid: tuple[int, ...]) -> torch.Tensor:
    """Normalised positions (prod(grid), d): `linspace(0, 1, n)` per axis, flattened row-major."""
    axes = [torch.linspace(0.0, 1.0, n) for n in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def grid_indices(grid: tuple[int, ...]) -> torch.Tensor:
    """Integer positions (prod(grid), d) as floats, flattened row-major."""
    axes = [torch.arange(n, dtype=torch.float32) for n in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def token_positions(args: EncodingArgs) -> torch.Tensor:
    """Extra tokens at `linspace(2, 3, n)` on every axis (outside the [0, 1] grid) first, then the grid."""
    extra = torch.linspace(2.0, 3.0, args.n_tokens).unsqueeze(1).expand(-1, len(args.grid))
    return torch.cat([extra, grid_positions(args.grid)])


class PositionalEncoding(nn.Module):
    """Calling the module with no argument returns the encoding, shape (1, n_tokens + prod(grid), dim).

    `name` is the registry name; `scale_search` says what a scale search can tune: "per_axis" (one scale per grid
    axis), "isotropic" (one global scale) or "none"."""

    name: ClassVar[str]
    scale_search: ClassVar[Literal["none", "isotropic", "per_axis"]] = "none"

    def __init__(self, args: EncodingArgs) -> None:
        super().__init__()
        self.grid = args.grid
        self.dim = args.dim
        self.n_tokens = args.n_tokens

    def forward(self) -> torch.Tensor:  # pragma: no cover - every encoding overrides it
        raise NotImplementedError
