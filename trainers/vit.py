"""One Vision Transformer for 2D images, 3D volumes and time x H x W video.

tokens = Conv_Nd(kernel = stride = patch)(x) flattened row-major, [CLS] first when enabled;
tokens += encoding() (`spacing`: None for normalized positions, else the token spacing in reference lengths);
timm `Block`s (fused scaled-dot-product attention); LayerNorm; CLS or mean pool; head.
With `pool="tokens"` there is no pooling: the head reads every patch token, output (B, n_patches * n_outputs)
in token order (a dense prediction, one value per token). With `pool="voxels"` a UNETR-style decoder
(`decoder.py`) reads the input and every block's tokens: output (B, n_outputs, *spatial) (segmentation).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm
from torch import nn

from afpe.encodings import build_encoding
from afpe.trainers.decoder import UnetrDecoder
from afpe.trainers.grid import patch_grid

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_layer_norm = partial(nn.LayerNorm, eps=1e-6)


class ViT(nn.Module):
    """Input (B, C, *spatial) with 1 to 3 spatial axes; output (B, n_outputs), (B, n_patches * n_outputs) with
    `pool="tokens"`, or (B, n_outputs, *spatial) with `pool="voxels"` (`decoder_features`: the decoder's F).
    ValueError naming `model.patch_size` when `pool="voxels"` and the input is not a whole number of patches."""

    def __init__(
        self,
        *,
        in_channels: int,
        spatial: Sequence[int],
        patch_size: Sequence[int],
        n_outputs: int,
        encoding: str,
        scales: Sequence[float] | None = None,
        scale: float = 1.0,
        pe_seed: int = 0,
        spacing: Sequence[float] | None = None,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        cls_token: bool = True,
        pool: str = "cls",
        decoder_features: int = 16,
    ) -> None:
        super().__init__()
        self.grid = patch_grid(spatial, patch_size)
        self.pool = pool
        self.patch_embed = _CONV[len(self.grid)](
            in_channels, dim, kernel_size=tuple(patch_size), stride=tuple(patch_size)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos_embed = build_encoding(
            encoding, self.grid, dim, scales=scales, scale=scale, n_tokens=int(cls_token), seed=pe_seed, spacing=spacing
        )
        self.blocks = nn.Sequential(
            *(Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=_layer_norm) for _ in range(depth))
        )
        self.norm = _layer_norm(dim)
        if pool == "voxels":
            if any(g * p != s for g, p, s in zip(self.grid, patch_size, spatial, strict=True)):
                raise ValueError(f"model.patch_size {list(patch_size)} must divide the input {list(spatial)}")
            self.head = UnetrDecoder(
                in_channels=in_channels,
                dim=dim,
                depth=depth,
                grid=self.grid,
                patch_size=patch_size,
                n_outputs=n_outputs,
                features=decoder_features,
            )
        else:
            self.head = nn.Linear(dim, n_outputs)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        # timm's ViT initialisation for our layers; the encoding keeps its own (seeded) draw, the decoder's
        # convolutions PyTorch's (as in MONAI's UNETR).
        for module in (self.blocks, self.norm, *([self.head] if pool != "voxels" else [])):
            module.apply(init_weights_vit_timm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        first = int(self.cls_token is not None)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed()
        if self.pool == "voxels":
            hidden = [x[:, first:]]
            for block in self.blocks:
                x = block(x)
                hidden.append(x[:, first:])
            hidden[-1] = self.norm(hidden[-1])
            return self.head(image, hidden)
        x = self.norm(self.blocks(x))
        patches = x[:, first:]
        if self.pool == "tokens":
            return self.head(patches).flatten(1)
        return self.head(x[:, 0] if self.pool == "cls" else patches.mean(dim=1))
