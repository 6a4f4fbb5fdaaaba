"""`synthetic_video`: a pulsating disk (a 'ventricle') next to a static distractor disk; regress the
ejection-fraction-like quantity EF = 100 * (1 - min area / max area) over the clip (metric r2).

The radius follows r(t) = r_min + (r_max - r_min) (1 + cos(2 pi t / period + phase)) / 2 with a period of
half to the whole clip, so a full cycle is in view; the label is computed from the frames generated.
Input (1, time, height, width) = (1, 16, 32, 32), tubelets (4, 4, 4): 4 x 8 x 8 = 256 tokens.
Physical positions: time in frames, height and width in pixels of the generated video (times the strides).
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

import numpy as np
from pydantic import Field
from torch.utils.data import Dataset

from afpe.core.per_axis import PerAxis
from afpe.trainers.objectives import Objective, Regression
from afpe.trainers.tasks.base import (
    AnisotropicOptions,
    ArrayDataset,
    Task,
    strided_patch,
    strided_size,
    subsample,
)
from afpe.trainers.tasks.registry import register_task


class VideoPhantomOptions(AnisotropicOptions):
    frames: int = Field(16, ge=2, le=1024)
    size: int = Field(32, ge=8, le=512, description="frame edge length before anisotropy")
    patch: Annotated[list[int], PerAxis(axes=("time", "height", "width"), ge=1)] = Field(
        [4, 4, 4], description="tubelet (time, height, width) before anisotropy"
    )
    n_train: int = Field(512, ge=1, le=1_000_000)
    n_val: int = Field(256, ge=1, le=1_000_000)
    noise: float = Field(0.1, ge=0, le=10)
    data_seed: int = Field(0, description="seed of the generated data (independent of the training seed)")


def pulsating_phantoms(
    n: int, frames: int, size: int, *, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(videos (n, 1, frames, size, size) float32, EF (n,) float32 in percent)."""
    r_max = rng.uniform(size / 8, size / 5, n)
    r_min = r_max * np.sqrt(1 - rng.uniform(0.15, 0.8, n))
    period = rng.uniform(frames / 2, frames, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    t = np.arange(frames)
    radius = r_min[:, None] + (r_max - r_min)[:, None] * 0.5 * (
        1 + np.cos(2 * np.pi * t / period[:, None] + phase[:, None])
    )
    ef = 100 * (1 - (radius.min(1) / radius.max(1)) ** 2)

    yy, xx = np.indices((size, size))
    margin = size / 5
    centre = rng.uniform(margin, size - margin, (n, 2))
    decoy = rng.uniform(margin, size - margin, (n, 2))
    decoy_radius = rng.uniform(size / 10, size / 5, n)

    def squared_distance(c: np.ndarray) -> np.ndarray:
        return (yy[None] - c[:, 0, None, None]) ** 2 + (xx[None] - c[:, 1, None, None]) ** 2

    videos = rng.normal(0.0, noise, (n, frames, size, size)).astype(np.float32)
    ventricle = squared_distance(centre)[:, None] <= (radius**2)[:, :, None, None]
    static = (squared_distance(decoy) <= (decoy_radius**2)[:, None, None])[:, None]
    videos = np.maximum(videos, np.where(ventricle, np.float32(1.0), np.float32(0)))
    videos = np.maximum(videos, np.where(static, np.float32(0.6), np.float32(0)))
    return videos[:, None], ef.astype(np.float32)


@register_task
class SyntheticVideo(Task):
    name = "synthetic_video"
    axis_names = ("time", "height", "width")
    Options = VideoPhantomOptions
    units = ("frame", "pixel", "pixel")

    @property
    def strides(self) -> tuple[int, ...]:
        return self.options.strides(3)

    @property
    def input_shape(self) -> tuple[int, ...]:
        opts = self.options
        return (1, *strided_size((opts.frames, opts.size, opts.size), self.strides))

    @property
    def default_patch(self) -> tuple[int, ...]:
        return strided_patch(self.options.patch, self.strides)

    @cached_property
    def objective(self) -> Objective:
        return Regression(target_scale=100.0)

    def datasets(self) -> tuple[Dataset, Dataset]:
        opts = self.options
        rng = np.random.default_rng(opts.data_seed)
        splits = []
        for n in (opts.n_train, opts.n_val):
            videos, ef = pulsating_phantoms(n, opts.frames, opts.size, noise=opts.noise, rng=rng)
            splits.append(ArrayDataset(np.ascontiguousarray(subsample(videos, self.strides)), ef))
        return splits[0], splits[1]
