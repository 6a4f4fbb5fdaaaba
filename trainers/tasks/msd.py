"""`msd`: a Medical Segmentation Decathlon task (metrics `dice` = mean foreground Dice, `dice_<class>`, `val_loss`).

Reads from `data_root` (one task's folder, e.g. Task09_Spleen): `dataset.json` with "labels" ({"0": "background",
"1": ...}), "modality" ({"0": "CT"}, one entry per channel) and "training" ([{"image": "./imagesTr/x.nii.gz",
"label": "./labelsTr/x.nii.gz"}, ...]), and the listed files under `imagesTr/` and `labelsTr/`. Task01_BrainTumour
(BraTS) has 4-channel 4D images (`channels=4`, `labels=edema,non-enhancing,enhancing`, no `ct_window`); the CT tasks
(spleen, colon, ...) one channel, windowed with `ct_window`. The options `labels` (foreground class names) and
`channels` default to what dataset.json declares ("labels" other than 0, the "modality" count), read when the
data root holds one, else to one foreground class and one channel (what `info()` reports without data); given,
dataset.json must agree with them.

Reading, cache, crops, split and physical spacing (mm): `afpe.trainers.tasks.volumes`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from afpe.trainers.tasks.base import DataError
from afpe.trainers.tasks.registry import register_task
from afpe.trainers.tasks.volumes import Case, VolumeOptions, VolumeTask, Voxels

DATASET_JSON = "dataset.json"
FOLDERS = ("imagesTr", "labelsTr")


class MSDOptions(VolumeOptions):
    # 64 x 64 x 32 voxels: a 96 mm cube at pixdim (1.5, 1.5, 3), the usual resampling of the thick-slice CT tasks;
    # patch 8 x 8 x 4 gives 8 x 8 x 8 = 512 tokens, a ViT step a CPU takes in about a second at batch 2.
    roi: Voxels = Field([64, 64, 32], description="crop size (x, y, z) in voxels after resampling")
    patch: Voxels = Field([8, 8, 4], description="ViT patch size (x, y, z); roi must be a multiple of it")
    labels: list[str] | None = Field(
        None, min_length=1, description="foreground class names, label 1, 2, ... (default: dataset.json's)"
    )
    channels: int | None = Field(
        None, ge=1, le=16, description="image channels (default: dataset.json's 'modality' entries)"
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _one_label(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@register_task
class MSD(VolumeTask):
    name = "msd"
    Options = MSDOptions

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("background", *self.labels)

    @property
    def labels(self) -> list[str]:
        """The foreground class names: the option, else dataset.json's, else one class `foreground`."""
        if self.options.labels is not None:
            return self.options.labels
        return self._declared[0] if self._declared else ["foreground"]

    @property
    def channels(self) -> int:
        """The option, else the number of dataset.json's modalities, else 1."""
        if self.options.channels is not None:
            return self.options.channels
        return self._declared[1] if self._declared else 1

    @cached_property
    def _declared(self) -> tuple[list[str], int] | None:
        """(foreground names, modality count) of the data root's dataset.json; None when there is none to read
        (no data here). DataError for a malformed one."""
        if self.data_root is None or not (self.data_root / DATASET_JSON).is_file():
            return None
        path = self.data_root / DATASET_JSON
        listing = _read_dataset_json(path)
        return _foreground(listing, path), len(listing["modality"])

    def cases(self) -> list[Case]:
        root = self.require_root()
        listing = _read_dataset_json(root / DATASET_JSON)
        declared = _foreground(listing, root / DATASET_JSON)
        if len(declared) != len(self.labels):
            raise DataError(
                f"task_options.labels names {len(self.labels)} foreground class(es) {self.labels}, "
                f"{root / DATASET_JSON} declares {len(declared)}: {declared}"
            )
        if len(listing["modality"]) != self.channels:
            raise DataError(
                f"task_options.channels is {self.channels}, {root / DATASET_JSON} lists {len(listing['modality'])} "
                f"modalities: {list(listing['modality'].values())}"
            )
        for folder in FOLDERS:
            if not (root / folder).is_dir():
                raise DataError(f"Decathlon folder {root / folder} not found")
        cases = []
        for number, entry in enumerate(listing["training"]):
            if not isinstance(entry, dict) or not {"image", "label"} <= set(entry):
                raise DataError(f"{root / DATASET_JSON}: training[{number}] needs the keys 'image' and 'label'")
            image, label = (_listed(root, entry[key]) for key in ("image", "label"))
            cases.append(Case(image.name.removesuffix(".gz").removesuffix(".nii"), (image,), label))
        return cases


def _foreground(listing: dict[str, Any], path: Path) -> list[str]:
    """dataset.json's class names other than value 0's, by value."""
    try:
        labels = sorted((int(value), str(name)) for value, name in listing["labels"].items())
    except ValueError:
        raise DataError(f"{path}: the keys of 'labels' must be values ('0', '1', ...)") from None
    return [name for value, name in labels if value != 0]


def _read_dataset_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"Decathlon {path} not found")
    try:
        listing = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    for key, kind in (("labels", dict), ("modality", dict), ("training", list)):
        if not isinstance(listing, dict) or key not in listing:
            raise DataError(f"{path} has no key {key!r}")
        if not isinstance(listing[key], kind):
            raise DataError(f"{path}: {key!r} must be a {'mapping' if kind is dict else 'list'}")
    return listing


def _listed(root: Path, name: str) -> Path:
    path = root / str(name)
    if not path.is_file():
        raise DataError(f"Decathlon file {path} not found (listed in {DATASET_JSON})")
    return path
