"""`medmnist3d`: MedMNIST 3D volumes from `{flag}.npz` (28^3) or `{flag}_64.npz` (64^3) in `data_root`.

Keys train/val_images (N, S, S, S) uint8 and train/val_labels (N, 1). Anisotropy is simulated by stride
(`img[:, ::a0, ::a1, ::a2]`, e.g. `1,1,4` gives 64x64x16), patch sizes round(patch / a_i) >= 1.
The strided uint8 volumes are cached on disk. Metrics: accuracy, auroc (macro one-vs-rest or binary).
Physical positions: the files carry no spacing (MedMNIST resized every scan to S^3), so the unit is a voxel of
the stored volume (times the anisotropy stride), not millimetres.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from torch.utils.data import Dataset

from afpe.trainers.objectives import Classification, Objective
from afpe.trainers.tasks.base import (
    AnisotropicOptions,
    ArrayDataset,
    DataError,
    Task,
    strided_patch,
    strided_size,
    subsample,
)
from afpe.trainers.tasks.cache import cached_arrays
from afpe.trainers.tasks.registry import register_task

#: Classes of each MedMNIST 3D flag.
FLAGS = {
    "organmnist3d": 11,
    "nodulemnist3d": 2,
    "adrenalmnist3d": 2,
    "fracturemnist3d": 3,
    "vesselmnist3d": 2,
    "synapsemnist3d": 2,
}


class MedMNIST3DOptions(AnisotropicOptions):
    flag: Literal[tuple(FLAGS)] = "organmnist3d"  # type: ignore[valid-type]
    size: Literal[28, 64] = 28
    patch: int = Field(4, ge=1, le=64, description="isotropic patch edge before anisotropy")


@register_task
class MedMNIST3D(Task):
    name = "medmnist3d"
    axis_names = ("d0", "d1", "d2")
    Options = MedMNIST3DOptions
    disk_cache = True

    @property
    def strides(self) -> tuple[int, ...]:
        return self.options.strides(3)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *strided_size((self.options.size,) * 3, self.strides))

    @property
    def default_patch(self) -> tuple[int, ...]:
        return strided_patch((self.options.patch,) * 3, self.strides)

    @cached_property
    def objective(self) -> Objective:
        return Classification(FLAGS[self.options.flag])

    @property
    def file_name(self) -> str:
        return f"{self.options.flag}.npz" if self.options.size == 28 else f"{self.options.flag}_64.npz"

    def datasets(self) -> tuple[Dataset, Dataset]:
        path = self.require_root() / self.file_name
        if not path.is_file():
            raise DataError(f"MedMNIST file {path} not found (flag {self.options.flag!r}, size {self.options.size})")
        options = {"flag": self.options.flag, "size": self.options.size, "strides": self.strides}
        arrays = cached_arrays("medmnist3d", [path], options, lambda: self._decode(path))
        return (
            ArrayDataset(arrays["train_images"], arrays["train_labels"]),
            ArrayDataset(arrays["val_images"], arrays["val_labels"]),
        )

    def _decode(self, path: Path) -> dict[str, np.ndarray]:
        try:
            archive = np.load(path)
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read MedMNIST file {path}: {error}") from None
        n_classes, size = FLAGS[self.options.flag], self.options.size
        arrays = {}
        with archive:
            for split in ("train", "val"):
                for key in (f"{split}_images", f"{split}_labels"):
                    if key not in archive.files:
                        raise DataError(f"MedMNIST file {path} has no array {key!r} (has {archive.files})")
                images, labels = archive[f"{split}_images"], archive[f"{split}_labels"].reshape(-1).astype(np.int64)
                if images.shape[1:] != (size,) * 3 or len(images) != len(labels):
                    raise DataError(
                        f"MedMNIST file {path}: {split}_images has shape {images.shape}, expected (N, {size}, {size}, "
                        f"{size}) with N = len({split}_labels) = {len(labels)}"
                    )
                if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
                    raise DataError(f"MedMNIST file {path}: {split}_labels outside 0..{n_classes - 1}")
                arrays[f"{split}_images"] = subsample(images[:, None].astype(np.uint8), self.strides)
                arrays[f"{split}_labels"] = labels
        return arrays
