"""The Fourier-feature family: γ(p) = [sin(2π p Bᵀ) ‖ cos(2π p Bᵀ)] with B = G · diag(s), G_ij ~ N(0, 1).

- `fourier` (IFPE): s_j = scale on every axis.
- `afpe`: s_j = scale · scales_j, default scales = grid / max(grid) (normalized positions: the same frequency per
  token step on every axis) or 1 (physical positions: the same frequency per unit length on every axis).
- `lfpe`: B itself is learned, initialised at G · diag(s).
- `lsfpe`: G fixed, the per-axis scale vector s is learned (initialised at scale · scales, default 1).

The draw G (and the learned values) live in `state_dict()`, so a reload reproduces the encoding. `afpe` is MONAI's
`build_fourier_position_embedding` on the patch tokens for the same seed (what equals what: `upstream.py`).

Precision: the angles reach 2π · 3 · |B| (thousands of radians at scale 50), so they are computed in float64
with autocast off (under bf16 autocast the matmul would round them to 8 bits of mantissa: the table turns to
noise at large scales) and the table is handed out as float32. The fixed encodings (`fourier`, `afpe`) compute
it once, as a non-persistent buffer refreshed whenever a state dict is loaded.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from afpe.encodings.base import EncodingArgs, PositionalEncoding, token_positions
from afpe.encodings.registry import register_encoding


@register_encoding
class FourierEncoding(PositionalEncoding):
    """`fourier`: isotropic random Fourier features, B_ij ~ N(0, 1) · scale."""

    name = "fourier"
    scale_search = "isotropic"

    learn_frequencies = False
    learn_scales = False

    @classmethod
    def check_dim(cls, dim: int, n_axes: int) -> None:
        if dim % 2:
            raise ValueError(f"{cls.__name__} needs an even dim (sin and cos halves), got dim={dim}")

    def __init__(self, args: EncodingArgs) -> None:
        super().__init__(args)
        gaussian = torch.randn(args.dim // 2, len(args.grid), generator=args.generator())
        axis_scale = torch.tensor(self.initial_scales(args), dtype=torch.float32)
        if self.learn_frequencies:
            self.frequency = nn.Parameter(gaussian * axis_scale)
        else:
            self.register_buffer("gaussian", gaussian)
            if self.learn_scales:
                self.axis_scale = nn.Parameter(axis_scale)
            else:
                self.register_buffer("axis_scale", axis_scale)
        self.register_buffer("positions", token_positions(args), False)
        if not self.learned:
            self.register_buffer("table", self.compute_table(), False)
            self.register_load_state_dict_post_hook(_refresh_after_load)

    @staticmethod
    def initial_scales(args: EncodingArgs) -> tuple[float, ...]:
        if args.scales is not None:
            raise ValueError("fourier is isotropic: it takes `scale`, not `scales`; use 'afpe' for per-axis scales")
        return (args.scale,) * len(args.grid)

    def frequencies(self) -> torch.Tensor:
        """B, shape (dim / 2, len(grid))."""
        return self.frequency if self.learn_frequencies else self.gaussian * self.axis_scale

    @property
    def learned(self) -> bool:
        return self.learn_frequencies or self.learn_scales

    def compute_table(self) -> torch.Tensor:
        """γ(p) = [sin(2π p Bᵀ) ‖ cos(2π p Bᵀ)], shape (1, n_tokens + prod(grid), dim): float64 arithmetic
        with autocast off whatever the caller enabled, returned as float32 (differentiable in B)."""
        with torch.autocast(self.positions.device.type, enabled=False):
            angles = 2 * math.pi * self.positions.double() @ self.frequencies().double().T
            return torch.cat([angles.sin(), angles.cos()], dim=-1).float().unsqueeze(0)

    @torch.no_grad()
    def refresh_table(self) -> None:
        """Recompute the cached table of a fixed encoding (its draw or scales were replaced)."""
        self.table.copy_(self.compute_table())

    def forward(self) -> torch.Tensor:
        return self.compute_table() if self.learned else self.table


@register_encoding
class AnisotropicFourierEncoding(FourierEncoding):
    """`afpe`: B[:, j] ~ N(0, (scale · s_j)²), default s = grid / max(grid), or 1 with physical positions."""

    name = "afpe"
    scale_search = "per_axis"

    @staticmethod
    def default_scales(args: EncodingArgs) -> tuple[float, ...]:
        if args.spacing is not None:
            return (1.0,) * len(args.grid)
        return tuple(n / max(args.grid) for n in args.grid)

    @classmethod
    def initial_scales(cls, args: EncodingArgs) -> tuple[float, ...]:
        scales = args.scales if args.scales is not None else cls.default_scales(args)
        return tuple(args.scale * s for s in scales)


@register_encoding
class LearnableFourierEncoding(AnisotropicFourierEncoding):
    """`lfpe`: B is a parameter, initialised N(0, 1) · scale (· scales_j when given, default 1)."""

    name = "lfpe"
    learn_frequencies = True

    @staticmethod
    def default_scales(args: EncodingArgs) -> tuple[float, ...]:
        return (1.0,) * len(args.grid)


@register_encoding
class LearnableScaleFourierEncoding(LearnableFourierEncoding):
    """`lsfpe`: B = G · diag(s) with G fixed and s a learned per-axis scale (init scale · scales, default 1)."""

    name = "lsfpe"
    learn_frequencies = False
    learn_scales = True


def _refresh_after_load(module: FourierEncoding, incompatible_keys: object) -> None:
    """`load_state_dict` post-hook of the fixed encodings: the loaded draw gets its table."""
    module.refresh_table()
