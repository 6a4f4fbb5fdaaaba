"""Table encodings, one stored vector per token: `none` (zeros), `learnable` (a free parameter per token) and
`sincos` (SPE on integer grid indices)."""

from __future__ import annotations

import torch
from torch import nn

from afpe.encodings.base import EncodingArgs, PositionalEncoding, grid_indices
from afpe.encodings.registry import register_encoding


@register_encoding
class NoEncoding(PositionalEncoding):
    """`none`: zeros, so attention sees no position at all."""

    name = "none"

    def __init__(self, args: EncodingArgs) -> None:
        super().__init__(args)
        self.register_buffer("table", torch.zeros(1, args.n_tokens + args.n_positions, args.dim), False)

    def forward(self) -> torch.Tensor:
        return self.table


@register_encoding
class LearnableEncoding(PositionalEncoding):
    """`learnable`: a free parameter per token, truncated normal with std 0.02."""

    name = "learnable"

    def __init__(self, args: EncodingArgs) -> None:
        super().__init__(args)
        table = torch.empty(1, args.n_tokens + args.n_positions, args.dim)
        nn.init.trunc_normal_(table, std=0.02, a=-0.04, b=0.04, generator=args.generator())
        self.table = nn.Parameter(table)

    def forward(self) -> torch.Tensor:
        return self.table


@register_encoding
class SinCosEncoding(PositionalEncoding):
    """`sincos` (SPE): per axis pos_dim = D/(2d) frequencies ω_k = 1/T^(k/pos_dim) on integer indices,
    laid out [sin(x ω), sin(y ω), …, cos(x ω), cos(y ω), …]; extra tokens are zeros."""

    name = "sincos"

    @classmethod
    def check_dim(cls, dim: int, n_axes: int) -> None:
        if dim % (2 * n_axes):
            raise ValueError(
                f"sincos needs dim divisible by 2*len(grid) = {2 * n_axes}, got dim={dim}; "
                f"allowed dims are multiples of {2 * n_axes}"
            )

    def __init__(self, args: EncodingArgs) -> None:
        n_axes = len(args.grid)
        super().__init__(args)
        pos_dim = args.dim // (2 * n_axes)
        omega = 1.0 / args.temperature ** (torch.arange(pos_dim, dtype=torch.float64) / pos_dim)
        angles = grid_indices(args.grid).double().unsqueeze(-1) * omega  # (N, d, pos_dim)
        table = torch.cat([angles.sin().flatten(1), angles.cos().flatten(1)], dim=1).float()
        table = torch.cat([torch.zeros(args.n_tokens, args.dim), table])
        self.register_buffer("table", table.unsqueeze(0), False)

    def forward(self) -> torch.Tensor:
        return self.table
