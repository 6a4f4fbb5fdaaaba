"""`echonet`: EchoNet-Dynamic ejection-fraction regression (metrics r2, mae, rmse in EF points).

Reads from `data_root`: `FileList.csv` (columns `FileName` with or without `.avi`, `EF`, `Split` =
TRAIN/VAL/TEST) and `Videos/<FileName>.avi`. Videos are decoded once (grayscale, resized to `size`) and
cached on disk. A sample is a clip of `frames` frames taken every `period` frames: in training a random start
drawn from the loader's (seed, epoch, index) generator, the first frames in validation (fixed); videos shorter
than the clip are padded with zeros.

Physical positions: time in frames of the source video (every `period`-th is kept; the frame interval, from the
file list's FPS, is not read), height and width in pixels of the source 112x112 frames (112 / `size` each).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Dataset

from afpe.core.per_axis import PerAxis
from afpe.trainers.objectives import Objective, Regression
from afpe.trainers.tasks.base import AugmentedDataset, DataError, Task, TaskOptions, to_input
from afpe.trainers.tasks.cache import cached_arrays, decoded_in_order
from afpe.trainers.tasks.registry import register_task

FILE_LIST = "FileList.csv"
COLUMNS = ("FileName", "EF", "Split")
SPLITS = {"train": "TRAIN", "val": "VAL"}


class EchoNetOptions(TaskOptions):
    frames: int = Field(16, ge=1, le=512, description="frames per clip")
    period: int = Field(4, ge=1, le=64, description="take every period-th frame")
    size: int = Field(64, ge=8, le=512, description="frame edge after resize (videos are 112x112)")
    patch: Annotated[list[int], PerAxis(axes=("time", "height", "width"), ge=1)] = Field(
        [4, 8, 8], description="tubelet (time, height, width)"
    )


class EchoClips(AugmentedDataset):
    """Clips (1, frames, size, size) from videos stored back to back (`frames_all`, `offsets`): a uniform
    random start with `rng`, the first frames without."""

    def __init__(self, frames_all: np.ndarray, offsets: np.ndarray, ef: np.ndarray, frames: int, period: int) -> None:
        self.frames_all, self.offsets, self.ef = frames_all, offsets, ef
        self.frames, self.period = frames, period

    def __len__(self) -> int:
        return len(self.ef)

    def draw(self, index: int, rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        video = self.frames_all[self.offsets[index] : self.offsets[index + 1]]
        span = (self.frames - 1) * self.period + 1
        start = int(rng.integers(0, len(video) - span + 1)) if rng is not None and len(video) > span else 0
        clip = video[start : start + span : self.period]
        if len(clip) < self.frames:
            clip = np.concatenate([clip, np.zeros((self.frames - len(clip), *video.shape[1:]), video.dtype)])
        return to_input(clip[None]), torch.tensor(self.ef[index])


@register_task
class EchoNet(Task):
    name = "echonet"
    axis_names = ("time", "height", "width")
    Options = EchoNetOptions
    disk_cache = True
    units = ("frame", "pixel", "pixel")
    SOURCE_SIZE = 112

    @property
    def voxel_spacing(self) -> tuple[float, ...]:
        pixel = self.SOURCE_SIZE / self.options.size
        return (float(self.options.period), pixel, pixel)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.options.frames, self.options.size, self.options.size)

    @property
    def default_patch(self) -> tuple[int, ...]:
        return tuple(self.options.patch)

    @cached_property
    def objective(self) -> Objective:
        return Regression(target_scale=100.0)

    def datasets(self) -> tuple[Dataset, Dataset]:
        root = self.require_root()
        file_list = root / FILE_LIST
        rows = _read_file_list(file_list)
        splits = {}
        for split, code in SPLITS.items():
            members = [(name, ef) for name, ef, row_split in rows if row_split.upper() == code]
            if not members:
                raise DataError(f"EchoNet {file_list} lists no video with Split = {code}")
            splits[split] = members
        return self._clips(file_list, splits["train"]), self._clips(file_list, splits["val"])

    def _clips(self, file_list: Path, members: list[tuple[str, float]]) -> EchoClips:
        paths = [_video_path(file_list.parent, name) for name, _ in members]
        size = self.options.size
        arrays = cached_arrays("echonet", [file_list, *paths], {"size": size}, lambda: _decode(paths, size))
        ef = np.array([ef for _, ef in members], dtype=np.float32)
        return EchoClips(arrays["frames"], arrays["offsets"], ef, self.options.frames, self.options.period)


def _read_file_list(path: Path) -> list[tuple[str, float, str]]:
    if not path.is_file():
        raise DataError(f"EchoNet file list {path} not found")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"EchoNet file list {path} has no column {missing[0]!r} (columns: {reader.fieldnames})")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((row["FileName"], float(row["EF"]), row["Split"]))
            except ValueError:
                raise DataError(f"EchoNet file list {path}, line {line}: EF {row['EF']!r} is not a number") from None
    return rows


def _video_path(root: Path, name: str) -> Path:
    path = root / "Videos" / (name if name.lower().endswith(".avi") else f"{name}.avi")
    if not path.is_file():
        raise DataError(f"EchoNet video {path} not found (listed in {FILE_LIST})")
    return path


def _decode(paths: list[Path], size: int) -> Iterator[tuple[str, np.ndarray | Iterator[np.ndarray]]]:
    """Every video as grayscale uint8 frames (size x size), back to back, streamed into the cache a video at a
    time (`decoded_in_order`), then the offsets (n + 1,) of each video's first frame."""
    lengths = []

    def frames() -> Iterator[np.ndarray]:
        for video in decoded_in_order(lambda path: _read_video(path, size), paths):
            lengths.append(len(video))
            yield video

    yield "frames", frames()
    yield "offsets", np.cumsum([0, *lengths])


def _read_video(path: Path, size: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            frames.append(cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA))
    finally:
        capture.release()
    if not frames:
        raise DataError(f"EchoNet video {path} has no readable frames")
    return np.stack(frames)
