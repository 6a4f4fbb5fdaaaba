"""A UNETR-style segmentation decoder (Hatamizadeh et al. 2022) on our ViT's tokens, built from MONAI's UNETR
blocks, for any encoding and for anisotropic patches.

MONAI's `UNETR` fixes its own ViT (patch 16, learned or sincos positions) and four x2 up-steps, so it cannot
take our encodings or a patch such as (16, 16, 4); its blocks can. Here the patch p_i = 2^e_i (powers of two) is
undone in S = gcd(e_i) equal up-steps of stride u_i = p_i^(1/S) (S at most 4: (16, 16, 16) gives UNETR's four
x2 steps, (16, 16, 4) two steps of (4, 4, 2), (8, 8, 2) one step of (8, 8, 2)). Level k = 0..S counts up-steps
from the token grid. Skips: the input (level S, `UnetrBasicBlock`, F channels) and, for k = 1..S-1, the tokens
after block floor(depth · (S - k) / S) brought up k steps (`UnetrPrUpBlock`, F · 2^(S-k) channels; block 0 is
the embedded input, as UNETR taps z3, z6, z9 of 12 blocks). Decoder: the final tokens go up one step per level
(`UnetrUpBlock`, joined with that level's skip), then `UnetOutBlock` gives (B, n_classes, *spatial).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce

import torch
from torch import nn

MAX_STEPS = 4
NORM = "instance"


def up_steps(patch_size: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """(S, u): the number of equal up-steps and their per-axis stride, u_i^S = p_i. ValueError naming
    `model.patch_size` unless every p_i is a power of two and at least one is > 1."""
    exponents = [int(p).bit_length() - 1 for p in patch_size]
    if any(p < 1 or 2**e != p for p, e in zip(patch_size, exponents, strict=True)) or not any(exponents):
        raise ValueError(
            f"model.patch_size: the segmentation decoder needs powers of two, at least one > 1, got {list(patch_size)}"
        )
    steps = reduce(math.gcd, exponents)
    while steps > MAX_STEPS:
        steps = next(d for d in range(MAX_STEPS, 0, -1) if steps % d == 0)
    return steps, tuple(2 ** (e // steps) for e in exponents)


class UnetrDecoder(nn.Module):
    """Tokens of every block (the embedded input first, (B, n_patches, dim) each, row-major over `grid`) and the
    input (B, in_channels, *spatial) -> logits (B, n_outputs, *spatial), spatial = grid · patch_size."""

    def __init__(
        self,
        *,
        in_channels: int,
        dim: int,
        depth: int,
        grid: Sequence[int],
        patch_size: Sequence[int],
        n_outputs: int,
        features: int = 16,
    ) -> None:
        from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock

        super().__init__()
        nd, self.grid = len(grid), tuple(grid)
        steps, stride = up_steps(patch_size)
        self.taps = [depth * (steps - k) // steps for k in range(1, steps)]
        self.input_skip = UnetrBasicBlock(nd, in_channels, features, 3, 1, NORM, res_block=True)
        self.token_skips = nn.ModuleList(
            UnetrPrUpBlock(nd, dim, features * 2 ** (steps - k), k - 1, 3, 1, stride, NORM, True, True)
            for k in range(1, steps)
        )
        self.ups = nn.ModuleList(
            UnetrUpBlock(
                nd,
                dim if k == 1 else features * 2 ** (steps - k + 1),
                features * 2 ** (steps - k),
                3,
                stride,
                NORM,
                True,
            )
            for k in range(1, steps + 1)
        )
        self.out = UnetOutBlock(nd, features, n_outputs)

    def forward(self, x: torch.Tensor, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        skips = [block(self._grid(hidden[tap])) for block, tap in zip(self.token_skips, self.taps, strict=True)]
        skips.append(self.input_skip(x))
        y = self._grid(hidden[-1])
        for up, skip in zip(self.ups, skips, strict=True):
            y = up(y, skip)
        return self.out(y)

    def _grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n_patches, dim) -> (B, dim, *grid)."""
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *self.grid)
