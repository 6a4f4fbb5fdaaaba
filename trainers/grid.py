"""The token grid of a patchified input, apart from the ViT so that specs and task metadata can compute it without
importing the model's libraries (timm alone takes ~6 s to import)."""

from __future__ import annotations

from collections.abc import Sequence


def patch_grid(spatial: Sequence[int], patch_size: Sequence[int]) -> tuple[int, ...]:
    """Tokens per axis: floor(size / patch) (a remainder is cropped, as a strided convolution does)."""
    if len(spatial) != len(patch_size):
        raise ValueError(f"patch_size {tuple(patch_size)} needs one value per input axis {tuple(spatial)}")
    grid = tuple(s // p for s, p in zip(spatial, patch_size, strict=True))
    if min(grid) < 1:
        raise ValueError(f"patch_size {tuple(patch_size)} is larger than the input {tuple(spatial)}")
    return grid
