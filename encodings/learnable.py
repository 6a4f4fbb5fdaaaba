"""`learnable`: a free parameter per token, truncated normal with std 0.02."""

from __future__ import annotations

import torch
from torch import nn

from afpe.encodings.base import EncodingArgs, PositionalEncoding


class LearnableEncoding(PositionalEncoding):
    def __init__(self, args: EncodingArgs) -> None:
        super().__init__(args)
        table = torch.empty(1, args.n_tokens + args.n_positions, args.dim)
        nn.init.trunc_normal_(table, std=0.02, a=-0.04, b=0.04, generator=args.generator())
        self.table = nn.Parameter(table)

    def forward(self) -> torch.Tensor:
        return self.table
