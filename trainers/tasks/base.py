"""What every task shares: validated options, input/patch geometry, simulated anisotropy, `TaskInfo`,
in-memory datasets and the data error type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch.utils.data import Dataset

from afpe.core.per_axis import PerAxis
from afpe.encodings.base import field_of_view, physical_spacing
from afpe.trainers.grid import patch_grid
from afpe.trainers.objectives import Objective


class DataError(ValueError):
    """A dataset problem the user can fix (missing root, file or column): one message naming it."""


class TaskOptions(BaseModel):
    """Options of a task (`task_options` / `--option KEY=VALUE`); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


class AnisotropicOptions(TaskOptions):
    """`anisotropy`: integer stride per axis, `img[:, ::a0, ::a1, ...]` (no resize back); a single value
    applies to the last axis. Patch sizes follow: round(p / a_i), at least 1."""

    anisotropy: Annotated[list[int], PerAxis(ge=1)] | None = None

    def strides(self, ndim: int) -> tuple[int, ...]:
        value = self.anisotropy or [1]
        if len(value) == 1:
            return (1,) * (ndim - 1) + (value[0],)
        if len(value) != ndim:
            raise ValueError(f"task_options.anisotropy needs 1 or {ndim} values (one per axis), got {value}")
        return tuple(value)


def subsample(array: np.ndarray, strides: Sequence[int]) -> np.ndarray:
    """Stride the last len(strides) axes: the paper's simulated anisotropy."""
    index = (Ellipsis, *(slice(None, None, a) for a in strides))
    return array[index]


def strided_size(size: Sequence[int], strides: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-s // a) for s, a in zip(size, strides, strict=True))


def strided_patch(patch: Sequence[int], strides: Sequence[int]) -> tuple[int, ...]:
    return tuple(max(1, round(p / a)) for p, a in zip(patch, strides, strict=True))


@dataclass(frozen=True)
class TaskInfo:
    """What a search needs to know about a task, computed without loading data."""

    name: str
    ndim: int
    axis_names: tuple[str, ...]
    metrics: dict[str, str]
    default_metric: str
    input_shape: tuple[int, ...]
    patch_size: tuple[int, ...]
    patch_grid: tuple[int, ...]
    n_outputs: int
    #: The pooling a dense task needs: "tokens" (one prediction per patch token), "voxels" (per input voxel), or None.
    dense: str | None = None
    #: Distance between neighbouring token centres per patch-grid axis, in `units` (`Task.voxel_spacing` · patch).
    spacing: tuple[float, ...] = ()
    #: The unit of each axis's spacing, e.g. ("voxel", "voxel", "voxel") or ("frame", "pixel", "pixel").
    units: tuple[str, ...] = ()

    def encoding_spacing(self, positions: str, reference_length: float | None = None) -> tuple[float, ...] | None:
        """What the encoding's `spacing` is for `positions`: None (normalized), or the token spacing in reference
        lengths (`afpe.encodings.base.physical_spacing`: L = `reference_length` in `units`, default the field of
        view's largest extent)."""
        if positions == "normalized":
            return None
        return physical_spacing(self.patch_grid, self.spacing, reference_length)

    def reference_length(self, reference_length: float | None = None) -> float:
        """L in `units`: `reference_length`, or the field of view's largest extent max_j grid_j · spacing_j."""
        if reference_length is not None:
            return reference_length
        return max(field_of_view(self.patch_grid, self.spacing))

    def positions_note(self, positions: str, reference_length: float | None = None) -> str:
        """How a scale reads, e.g. "positions physical: scales in cycles per 24 voxel (token spacing d0: 4 voxel,
        d1: 4 voxel, d2: 4 voxel)"."""
        if positions == "normalized":
            return "positions normalized: scales in cycles per field of view (linspace(0, 1) per axis)"
        extents = field_of_view(self.patch_grid, self.spacing)
        unit = self.units[0] if len(set(self.units)) == 1 else "task units"
        if reference_length is None:
            unit = self.units[extents.index(max(extents))]
        axes = ", ".join(f"{a}: {h:g} {u}" for a, h, u in zip(self.axis_names, self.spacing, self.units, strict=True))
        return (
            f"positions physical: scales in cycles per {self.reference_length(reference_length):g} {unit} "
            f"(token spacing {axes})"
        )

    def resolve_pool(self, pool: str | None, cls_token: bool = True) -> str:
        """The model's pooling for this task: `pool`, or when None the task's default (the pooling a dense task
        needs, `dense`; else "cls", or "mean" without a CLS token). Raises ValueError naming `model.pool` when
        `pool` does not fit the task."""
        if self.dense is not None:
            if pool not in (None, self.dense):
                per = "patch token" if self.dense == "tokens" else "voxel"
                raise ValueError(f"model.pool: task {self.name!r} predicts per {per}: set pool to {self.dense!r}")
            return self.dense
        if pool in ("tokens", "voxels"):
            raise ValueError(f"model.pool: task {self.name!r} predicts one value per input: use 'cls' or 'mean'")
        return pool or ("cls" if cls_token else "mean")


class ArrayDataset(Dataset):
    """Samples from arrays (in memory or memory-mapped), inputs as `to_input` gives them."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_input(self.inputs[index]), torch.from_numpy(np.array(self.targets[index]))


class AugmentedDataset(Dataset):
    """A dataset whose training items are random draws: `draw(index, rng)` with the generator the training loader
    seeds by (seed, epoch, index) (`afpe.trainers.batches`); `dataset[index]` = `draw(index, None)` is the fixed
    item validation uses. Never the global torch RNG, so items are the same in loader workers and after a resume."""

    @abstractmethod
    def draw(self, index: int, rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.draw(index, None)


def to_input(array: np.ndarray) -> torch.Tensor:
    """A copy (memory-mapped arrays stay untouched): uint8 pixels stay uint8 (a quarter of float32's bytes through
    the loader and onto the device, where `normalize` scales them), anything else becomes float32."""
    return torch.from_numpy(np.array(array, dtype=np.uint8 if array.dtype == np.uint8 else np.float32))


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """A batch as the model takes it, computed where the batch is (the loop calls it after the transfer to the
    device): uint8 pixels -> float32 x / 255 in [0, 1]; other (float32) batches unchanged."""
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch


class Task(ABC):
    """A task knows its input, patch geometry, objective and datasets. Subclasses set the class attributes
    and implement `input_shape`, `default_patch`, `objective` and `datasets`."""

    name: ClassVar[str]
    axis_names: ClassVar[tuple[str, ...]]
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    #: Whether `datasets` decodes files into the on-disk cache (see `prepare`).
    disk_cache: ClassVar[bool] = False
    #: The unit of each input axis (physical positions); None: "pixel" in 2D, "voxel" otherwise.
    units: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, options: Mapping[str, Any] | None = None, data_root: str | Path | None = None) -> None:
        try:
            self.options = self.Options.model_validate(dict(options or {}))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"task_options of {self.name!r}: {problems}") from None
        self.data_root = None if data_root is None else Path(data_root).expanduser()

    @property
    def ndim(self) -> int:
        return len(self.axis_names)

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """(channels, *spatial) after any anisotropic subsampling."""

    @property
    @abstractmethod
    def default_patch(self) -> tuple[int, ...]:
        """Per-axis patch size used when the model config leaves it None."""

    @property
    @abstractmethod
    def objective(self) -> Objective: ...

    @abstractmethod
    def datasets(self) -> tuple[Dataset, Dataset]:
        """(train, validation); validation is deterministic."""

    @property
    def voxel_spacing(self) -> tuple[float, ...]:
        """Distance between neighbouring input elements per axis, in `axis_units`: the anisotropy stride for tasks
        that simulate it (a unit of the original isotropic grid), else 1 (the data's pixels or voxels); the NIfTI
        tasks override it with millimetres (`volumes.py`)."""
        if isinstance(self.options, AnisotropicOptions):
            return tuple(float(a) for a in self.options.strides(self.ndim))
        return (1.0,) * self.ndim

    @property
    def axis_units(self) -> tuple[str, ...]:
        return self.units or (("pixel",) * 2 if self.ndim == 2 else ("voxel",) * self.ndim)

    @property
    def spacing_needs_data(self) -> str | None:
        """None when `voxel_spacing` follows from the options alone; else what to set so that it does, starting
        with the field's name (a study places its tokens without reading data: `search/spec.py` refuses physical
        positions then, lest its notes and MONAI export use another spacing than its trials)."""
        return None

    def prepare(self) -> None:
        """Build what `datasets` reads from the on-disk cache (`cache.py`), once, before trials start: tasks with
        `disk_cache` build their datasets; the others (generated in memory) do nothing."""
        if self.disk_cache:
            self.datasets()

    def patch_size(self, override: Sequence[int] | None = None) -> tuple[int, ...]:
        if override is None:
            return self.default_patch
        if len(override) == 1:
            return (override[0],) * self.ndim
        if len(override) != self.ndim:
            raise ValueError(f"model.patch_size needs 1 or {self.ndim} values for task {self.name!r}, got {override}")
        return tuple(override)

    def info(self, patch_override: Sequence[int] | None = None) -> TaskInfo:
        patch = self.patch_size(patch_override)
        objective = self.objective
        return TaskInfo(
            name=self.name,
            ndim=self.ndim,
            axis_names=self.axis_names,
            metrics=dict(objective.metrics),
            default_metric=objective.default_metric,
            input_shape=self.input_shape,
            patch_size=patch,
            patch_grid=patch_grid(self.input_shape[1:], patch),
            n_outputs=objective.n_outputs,
            dense=objective.dense,
            spacing=tuple(p * h for p, h in zip(patch, self.voxel_spacing, strict=True)),
            units=self.axis_units,
        )

    def require_root(self) -> Path:
        if self.data_root is None:
            raise DataError(f"task {self.name!r} reads a dataset: set data_root (--data-root DIR)")
        if not self.data_root.is_dir():
            raise DataError(f"data_root {self.data_root} of task {self.name!r} is not a directory")
        return self.data_root
