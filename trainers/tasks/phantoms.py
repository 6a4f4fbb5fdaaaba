"""Synthetic position phantoms, generated in memory from a seed (no download).

A bright cube (the target) lies in one orthant of the frame; its centre has a random sub-patch offset and
dimmer cubes of the same size (distractors) lie anywhere. `target` picks the label:
- `orthant` (default): which orthant holds the cube (4 classes in 2D, 8 in 3D), bit j set when it is in the
  upper half of axis j. Cross-entropy; learning curves sit at chance, then jump at a seed-dependent epoch,
  and a broad band of scales ties at accuracy 1.0 once trained.
- `centre`: regress the cube's centre c / (size - 1) in [0, 1]^ndim (MSE, `val_loss`). Every bit of
  positional information lowers the loss from the first step, and it does not saturate: the error left is
  how finely the encoding lets the model read the target token's position.
Patch content alone cannot give the label: without a positional encoding the ViT is permutation-invariant
over patches. Anisotropy strides the generated isotropic volume (`img[:, ::a0, ::a1, ::a2]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field
from torch.utils.data import Dataset

from afpe.trainers.objectives import Classification, Objective, Regression
from afpe.trainers.tasks.base import (
    AnisotropicOptions,
    ArrayDataset,
    Task,
    strided_patch,
    strided_size,
    subsample,
)


class PhantomOptions(AnisotropicOptions):
    size: int = Field(32, ge=8, le=512, description="isotropic edge length before anisotropy")
    patch: int = Field(4, ge=1, le=128, description="isotropic patch edge before anisotropy")
    n_train: int = Field(512, ge=1, le=1_000_000)
    n_val: int = Field(256, ge=1, le=1_000_000)
    distractors: int = Field(2, ge=0, le=64)
    noise: float = Field(0.1, ge=0, le=10)
    data_seed: int = Field(0, description="seed of the generated data (independent of the training seed)")
    target: Literal["orthant", "centre"] = Field("orthant", description="label: orthant class or centre coordinates")


def orthant_phantoms(
    n: int,
    size: int,
    ndim: int,
    *,
    distractors: int,
    noise: float,
    rng: np.random.Generator,
    strides: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 1, size^ndim) float32, labels (n,) int64 in [0, 2^ndim), target centres (n, ndim) int).

    Cubes have half-width max(1, size // 12), and at least a_j // 2 along an axis that `strides` subsamples
    by a_j, so that every strided volume still shows the target (a thinner cube can fall between kept slices)."""
    half = np.maximum(max(1, size // 12), np.asarray(strides or (1,) * ndim) // 2)  # per-axis half-width
    labels = rng.integers(0, 2**ndim, n)
    upper = (labels[:, None] >> np.arange(ndim)) & 1
    low = rng.integers(half, np.maximum(half + 1, size // 2 - half), (n, ndim))
    centres = np.where(upper == 1, low + size - size // 2, low)  # mirrored into the upper half
    images = rng.normal(0.0, noise, (n, *(size,) * ndim)).astype(np.float32)
    structures = [(centres, 1.0)] + [(rng.integers(half, size - half, (n, ndim)), 0.5) for _ in range(distractors)]
    for centre, value in structures:
        images = np.maximum(images, np.float32(value) * _cube_mask(centre, half, size))
    return images[:, None], labels.astype(np.int64), centres


def _cube_mask(centres: np.ndarray, half: np.ndarray, size: int) -> np.ndarray:
    """(n, size^ndim) float32: 1 where |x_j - c_j| <= half_j for every axis j, an outer product of per-axis masks."""
    n, ndim = centres.shape
    inside = (np.abs(np.arange(size)[None, None] - centres[:, :, None]) <= half[None, :, None]).astype(np.float32)
    mask = inside[:, 0]
    for axis in range(1, ndim):
        mask = mask[..., None] * inside[:, axis].reshape(n, *(1,) * axis, size)
    return mask


class OrthantPhantomTask(Task):
    """Classify which orthant of the frame the bright cube is in."""

    Options = PhantomOptions

    @property
    def strides(self) -> tuple[int, ...]:
        return self.options.strides(self.ndim)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *strided_size((self.options.size,) * self.ndim, self.strides))

    @property
    def default_patch(self) -> tuple[int, ...]:
        return strided_patch((self.options.patch,) * self.ndim, self.strides)

    @cached_property
    def objective(self) -> Objective:
        if self.options.target == "centre":
            return Regression(n_outputs=self.ndim)
        return Classification(2**self.ndim)

    def datasets(self) -> tuple[Dataset, Dataset]:
        opts = self.options
        rng = np.random.default_rng(opts.data_seed)
        splits = []
        for n in (opts.n_train, opts.n_val):
            images, labels, centres = orthant_phantoms(
                n, opts.size, self.ndim, distractors=opts.distractors, noise=opts.noise, rng=rng, strides=self.strides
            )
            if opts.target == "centre":
                labels = (centres / (opts.size - 1)).astype(np.float32)
            splits.append(ArrayDataset(np.ascontiguousarray(subsample(images, self.strides)), labels))
        return splits[0], splits[1]
