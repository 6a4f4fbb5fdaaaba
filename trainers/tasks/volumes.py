"""Volumetric segmentation from NIfTI files: what `msd` and `brats` share.

Reading (MONAI, one case at a time): `LoadImaged` (nibabel; one 4D file or one file per channel, stacked) ->
`EnsureChannelFirstd` -> `Orientationd("RAS")` -> `Spacingd(pixdim)` (bilinear image, nearest label) when the option
`pixdim` (mm) is set -> intensity: `ScaleIntensityRanged` of the option `ct_window` [low, high] onto [0, 1] (clipped;
CT in HU) or, without a window (MRI), `CropForegroundd` to the bounding box of the nonzero voxels (a skull-stripped
BraTS volume loses its zero surround) and `NormalizeIntensityd` per channel over the nonzero voxels (z-score). A
label's values must be the task's declared source values; the k-th of them (sorted) becomes class k (BraTS 2021:
4 -> 3).

Cache: each case is decoded once into its own entry (`cache.cached_arrays`, keyed by the case's files and the
options that shape it; the entries of a split are built a few at a time by `cache.decoded_in_order`): `image`
float16 (C, X, Y, Z) (z-scores and [0, 1] windows keep 3 significant digits on half float32's disk), `label` uint8
(X, Y, Z), `centre` (3,) the foreground's bounding-box centre (the volume's without foreground), `fg`/`bg` at most
`MAX_INDICES` raveled foreground/background voxel indices, evenly spaced. One entry per case lets volumes of any
size sit side by side, keeps a build's memory at a few volumes (a single flat array would need a second pass or
every label in memory), and re-decodes nothing when cases are added.

Items: (image float32 (C, *roi), label int64 (*roi)) with classes 0..n_classes-1. Training: a crop of `roi` centred
on a foreground voxel with probability `foreground_fraction`, else on a background one (MONAI's
`RandCropByPosNegLabeld` sampling, `generate_pos_neg_label_crop_centers`, over the cached index samples, seeded from
the loader's generator). Validation: the crop centred on `centre`. Centres are moved so the crop lies inside the
volume (`correct_crop_centers`); an axis shorter than `roi` is zero-padded symmetrically. Crops are sliced from the
memory-mapped cache by hand (MONAI's `SpatialCrop` would read the whole volume into a tensor first).

Split: the cases sorted by the SHA-256 of their names, the first max(1, round(n · val_fraction)) validate (the
same split whatever order the files are listed in; adding a case moves at most one other). At least 2 cases.

Physical spacing (`voxel_spacing`, `axis_units`): `pixdim` in mm when set (the volumes are resampled to it); else,
when data_root is set, the median over the cases' NIfTI headers of the voxel size along each RAS axis (the affine's
column norms, as `Spacingd` reads them; a header read, no decoding), in mm; else 1 voxel (units "voxel"). A study
places its tokens without reading data, so its spec refuses physical positions without `pixdim`
(`spacing_needs_data`).
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch.utils.data import Dataset

from afpe.core.per_axis import PerAxis
from afpe.trainers.objectives import Objective, Segmentation
from afpe.trainers.tasks.base import AugmentedDataset, DataError, Task, TaskOptions
from afpe.trainers.tasks.cache import cached_arrays, decoded_in_order

#: Foreground and background voxel indices kept per case for training crops (evenly spaced in raveled order).
MAX_INDICES = 4096
#: Cases decoded at once while a split is cached (each holds a few float32 copies of its volume).
DECODE_AHEAD = 4
CACHE_VERSION = 1
#: Sizes in voxels along (x, y, z) (a crop, a patch): one value for every axis or three.
Voxels = Annotated[list[int], PerAxis(axes=("x", "y", "z"), ge=1)]


class VolumeOptions(TaskOptions):
    """Options of a volume task; subclasses set the defaults of `roi` and `patch`."""

    roi: Voxels = Field(description="crop size (x, y, z) in voxels after resampling; one value: a cube")
    patch: Voxels = Field(description="ViT patch size (x, y, z); roi must be a multiple of it")
    pixdim: Annotated[list[float], PerAxis(axes=("x", "y", "z"), gt=0)] | None = Field(
        None, description="resample to this voxel size (x, y, z) in mm"
    )
    ct_window: list[float] | None = Field(None, description="[low, high] intensities (HU) scaled to [0, 1]")
    foreground_fraction: float = Field(0.5, ge=0.0, le=1.0, description="training crops centred on foreground")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of the cases that validate")

    @field_validator("ct_window")
    @classmethod
    def _window(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 2 or not value[0] < value[1]):
            raise ValueError(f"needs [low, high] with low < high, got {value}")
        return value

    @field_validator("patch")
    @classmethod
    def _powers_of_two(cls, value: list[int]) -> list[int]:
        if any(p & (p - 1) for p in value) or max(value) < 2:
            raise ValueError(f"the segmentation decoder needs powers of two, at least one > 1 (x, y, z), got {value}")
        return value

    @model_validator(mode="after")
    def _roi_in_patches(self) -> VolumeOptions:
        if any(r % p for r, p in zip(self.roi, self.patch, strict=True)):
            raise ValueError(f"roi {self.roi} must be a multiple of patch {self.patch} on every axis")
        return self


@dataclass(frozen=True)
class Case:
    """One labelled volume: its image file(s) (one 4D file, or one per channel in channel order) and label file."""

    name: str
    images: tuple[Path, ...]
    label: Path

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.images, self.label)


class VolumeTask(Task):
    """A segmentation task over NIfTI cases (module docstring). Subclasses list the `cases`, and set
    `class_names`, `channels` and `label_values` (the source label values, class k = the k-th sorted)."""

    axis_names = ("x", "y", "z")
    Options = VolumeOptions
    disk_cache = True

    @property
    @abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """Background first."""

    @property
    @abstractmethod
    def channels(self) -> int: ...

    @abstractmethod
    def cases(self) -> list[Case]:
        """Every labelled case under data_root; DataError naming a missing folder, file or key."""

    def label_values(self, case: Case) -> tuple[int, ...]:
        return tuple(range(len(self.class_names)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, *self.options.roi)

    @property
    def default_patch(self) -> tuple[int, ...]:
        return tuple(self.options.patch)

    @cached_property
    def objective(self) -> Objective:
        return Segmentation(self.class_names)

    @cached_property
    def voxel_spacing(self) -> tuple[float, ...]:
        if self.options.pixdim is not None:
            return tuple(float(v) for v in self.options.pixdim)
        if self.data_root is None:
            return (1.0, 1.0, 1.0)
        return tuple(float(v) for v in np.median([header_spacing(c.label) for c in self.cases()], axis=0))

    @property
    def axis_units(self) -> tuple[str, ...]:
        known = self.options.pixdim is not None or self.data_root is not None
        return ("mm",) * 3 if known else ("voxel",) * 3

    @property
    def spacing_needs_data(self) -> str | None:
        if self.options.pixdim is not None:
            return None
        return "task_options.pixdim: set the voxel size (mm); without it the spacing is read from the volumes' headers"

    def datasets(self) -> tuple[Dataset, Dataset]:
        cases = self.cases()
        if len(cases) < 2:
            raise DataError(f"{self.name}: 2 labelled cases or more needed in {self.data_root}, found {len(cases)}")
        ordered = sorted(cases, key=lambda case: hashlib.sha256(case.name.encode()).hexdigest())
        n_val = min(len(cases) - 1, max(1, round(len(cases) * self.options.val_fraction)))
        roi, fraction = tuple(self.options.roi), self.options.foreground_fraction
        return (
            VolumeCrops(self._volumes(ordered[n_val:]), roi, fraction),
            VolumeCrops(self._volumes(ordered[:n_val]), roi, fraction),
        )

    def _volumes(self, cases: list[Case]) -> list[dict[str, np.ndarray]]:
        """Each case's cached arrays (decoded when absent, `DECODE_AHEAD` at a time)."""
        options = self.options

        def entry(case: Case) -> dict[str, np.ndarray]:
            values = self.label_values(case)
            shaping = {
                "version": CACHE_VERSION,
                "pixdim": options.pixdim,
                "ct_window": options.ct_window,
                "channels": self.channels,
                "label_values": list(values),
            }
            return cached_arrays(
                self.name, case.files, shaping, lambda: decode_case(case, self.channels, values, options)
            )

        return list(decoded_in_order(entry, cases, ahead=DECODE_AHEAD))


class VolumeCrops(AugmentedDataset):
    """Crops (image (C, *roi) float32, label (*roi) int64) of cached volumes (module docstring)."""

    def __init__(self, volumes: list[dict[str, np.ndarray]], roi: tuple[int, ...], foreground_fraction: float) -> None:
        self.volumes, self.roi, self.foreground_fraction = volumes, roi, foreground_fraction

    def __len__(self) -> int:
        return len(self.volumes)

    def draw(self, index: int, rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        # MONAI is imported on first use here and in `decode_case`: a spec reads `Task.info()` without it (~5 s)
        from monai.transforms.utils import correct_crop_centers, generate_pos_neg_label_crop_centers

        volume = self.volumes[index]
        shape = volume["label"].shape
        if rng is None:
            centre = correct_crop_centers(volume["centre"].tolist(), self.roi, shape, allow_smaller=True)
        else:
            fg, bg = volume["fg"], volume["bg"]
            fg, bg = (fg if len(fg) else bg), (bg if len(bg) else fg)  # one kind missing: MONAI would warn each draw
            state = np.random.RandomState(int(rng.integers(2**32)))
            (centre,) = generate_pos_neg_label_crop_centers(
                self.roi, 1, self.foreground_fraction, shape, fg, bg, state, allow_smaller=True
            )
        image = crop(volume["image"], centre, self.roi).astype(np.float32)
        label = crop(volume["label"], centre, self.roi).astype(np.int64)
        return torch.from_numpy(image), torch.from_numpy(label)


def crop(array: np.ndarray, centre: Sequence[int], roi: Sequence[int]) -> np.ndarray:
    """The `roi` window of `array`'s last 3 axes centred on `centre` (start = centre - size // 2, as MONAI's
    `SpatialCrop`; the centre must keep the window inside), zero-padded symmetrically (`SpatialPad`) on axes shorter
    than `roi`. Reads only the window from a memory-mapped array."""
    shape = array.shape[-3:]
    size = [min(r, s) for r, s in zip(roi, shape, strict=True)]
    window = tuple(slice(c - k // 2, c - k // 2 + k) for c, k in zip(centre, size, strict=True))
    pad = [(0, 0)] * (array.ndim - 3) + [((r - k) // 2, r - k - (r - k) // 2) for r, k in zip(roi, size, strict=True)]
    return np.pad(np.asarray(array[(..., *window)]), pad)


def header_spacing(path: Path) -> tuple[float, float, float]:
    """The voxel size (mm) along the R, A and S axes from a NIfTI header (the affine's column norms, permuted as
    `Orientationd("RAS")` permutes the axes). DataError for an unreadable file."""
    import nibabel

    try:
        affine = nibabel.load(path).affine
    except (OSError, ValueError, nibabel.filebasedimages.ImageFileError) as error:
        raise DataError(f"cannot read the NIfTI header of {path}: {error}") from None
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    spacing = [0.0, 0.0, 0.0]
    for axis, (ras_axis, _) in enumerate(nibabel.orientations.io_orientation(affine)):
        spacing[int(ras_axis)] = float(f"{sizes[axis]:.6g}")  # the header's float32, without its 1e-8 noise
    return tuple(spacing)


def decode_case(
    case: Case, channels: int, label_values: Sequence[int], options: VolumeOptions
) -> dict[str, np.ndarray]:
    """A case read and shaped with MONAI (module docstring) into the cached arrays. DataError naming the file for
    an unreadable file, a channel count other than `channels`, image and label of unlike shapes, or label values
    outside `label_values`."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

    source = {"image": [str(path) for path in case.images], "label": str(case.label)}
    if len(case.images) == 1:
        source["image"] = source["image"][0]
    load = Compose([LoadImaged(["image", "label"], reader="NibabelReader"), EnsureChannelFirstd(["image", "label"])])
    try:
        data = load(source)
    except Exception as error:  # noqa: BLE001 - MONAI wraps any reader failure; it names a file the user can fix
        files = ", ".join(str(path) for path in case.files)
        raise DataError(f"cannot read case {case.name!r} ({files}): {str(error).splitlines()[-1]}") from None
    image, label = data["image"], data["label"]
    if image.shape[0] != channels:
        raise DataError(f"{case.images[0]}: {image.shape[0]} image channel(s), the task reads {channels}")
    if label.shape[0] != 1 or label.shape[1:] != image.shape[1:]:
        raise DataError(
            f"{case.label}: label shape {tuple(label.shape[1:]) if label.shape[0] == 1 else tuple(label.shape)} "
            f"differs from the image's {tuple(image.shape[1:])} ({case.images[0]})"
        )
    data = _shape_transform(options)(data)
    image, label = np.asarray(data["image"], dtype=np.float16), np.asarray(data["label"][0])
    found = np.unique(label)
    outside = sorted(set(found.tolist()) - set(label_values))
    if outside:
        raise DataError(
            f"{case.label}: label value(s) {', '.join(f'{v:g}' for v in outside[:5])} outside the declared classes' "
            f"values {list(label_values)}"
        )
    label = np.searchsorted(np.asarray(sorted(label_values)), label).astype(np.uint8)
    return {"image": image, "label": label, **_sampling(label)}


def _shape_transform(options: VolumeOptions) -> Any:
    from monai.transforms import (
        Compose,
        CropForegroundd,
        NormalizeIntensityd,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )

    transforms = [Orientationd(["image", "label"], axcodes="RAS", labels=None)]  # None: the reader's space (RAS)
    if options.pixdim is not None:
        transforms.append(Spacingd(["image", "label"], pixdim=options.pixdim, mode=("bilinear", "nearest")))
    if options.ct_window is not None:
        low, high = options.ct_window
        transforms.append(ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True))
    else:
        keys = ["image", "label"]
        crop = CropForegroundd(keys, "image", _nonzero, allow_smaller=True, start_coord_key=None, end_coord_key=None)
        transforms.append(crop)
        transforms.append(NormalizeIntensityd("image", nonzero=True, channel_wise=True))
    return Compose(transforms)


def _nonzero(image: torch.Tensor) -> torch.Tensor:
    """The voxels `CropForegroundd` keeps: nonzero, the set `NormalizeIntensityd(nonzero=True)` z-scores over
    (MONAI's default keeps positive values only, which would crop a CT read without a window to its soft tissue)."""
    return image != 0


def _sampling(label: np.ndarray) -> dict[str, np.ndarray]:
    """`centre` (the foreground's bounding-box centre, or the volume's) and the `fg`/`bg` index samples."""
    foreground = np.flatnonzero(label)
    if len(foreground):
        where = np.stack(np.unravel_index(foreground, label.shape))
        centre = (where.min(axis=1) + where.max(axis=1)) // 2
    else:
        centre = np.asarray(label.shape) // 2
    return {
        "centre": centre.astype(np.int64),
        "fg": _spread(foreground),
        "bg": _spread(np.flatnonzero(label == 0)),
    }


def _spread(indices: np.ndarray) -> np.ndarray:
    if len(indices) > MAX_INDICES:
        indices = indices[np.linspace(0, len(indices) - 1, MAX_INDICES).astype(np.int64)]
    return indices.astype(np.int64)
