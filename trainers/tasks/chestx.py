"""`chestx`: NIH ChestX-ray14, 14 findings multi-label (metrics auroc, auprc = macro average precision).

Reads from `data_root`: `Data_Entry_2017_v2020.csv` (or `Data_Entry_2017.csv`; columns `Image Index`,
`Finding Labels` ('|'-separated or 'No Finding'), `Patient ID`), `train_val_list.txt`, and the PNGs
under `images*/**/` (e.g. images_001/images/00000001_000.png; RGBA copies are read as grayscale).
Validation = a seeded `val_fraction` of the train_val patients (no patient in both); `test_list.txt` is
not used for training or selection. Images are resized (shorter side) and centre-cropped to `size`, and
cached on disk; listed images that are not present are skipped with a warning (partial downloads).
Physical positions: pixels of the resized image (the file list's pixel spacing is not read).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from pydantic import Field
from torch.utils.data import Dataset

from afpe.trainers.objectives import MultiLabel, Objective
from afpe.trainers.tasks.base import ArrayDataset, DataError, Task, TaskOptions
from afpe.trainers.tasks.cache import cached_arrays, decoded_in_order
from afpe.trainers.tasks.registry import register_task

FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
CSV_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
SPLIT_LIST = "train_val_list.txt"


class ChestXOptions(TaskOptions):
    size: int = Field(64, ge=8, le=1024, description="image edge after resize and centre crop")
    patch: int = Field(8, ge=1, le=256)
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of train_val patients used for validation")
    data_seed: int = Field(0, description="seed of the patient split")


@register_task
class ChestX(Task):
    name = "chestx"
    axis_names = ("rows", "cols")
    Options = ChestXOptions
    disk_cache = True

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.options.size, self.options.size)

    @property
    def default_patch(self) -> tuple[int, ...]:
        return (self.options.patch,) * 2

    @cached_property
    def objective(self) -> Objective:
        return MultiLabel(len(FINDINGS))

    def datasets(self) -> tuple[Dataset, Dataset]:
        root = self.require_root()
        table = _read_table(root)
        split_list = root / SPLIT_LIST
        if not split_list.is_file():
            raise DataError(f"ChestX split list {split_list} not found (the official train_val_list.txt)")
        names = [line.strip() for line in split_list.read_text().splitlines() if line.strip()]
        images = {path.name: path for path in root.glob("images*/**/*.png")}
        listed = [name for name in names if name in table]
        present = [name for name in listed if name in images]
        if len(present) < len(names):
            warnings.warn(
                f"ChestX: {len(names) - len(present)} of {len(names)} images in {SPLIT_LIST} are missing from the "
                f"CSV or from {root}/images*/; training on the {len(present)} present",
                stacklevel=2,
            )
        patients = sorted({table[name][1] for name in present})
        rng = np.random.default_rng(self.options.data_seed)
        n_val = max(1, round(self.options.val_fraction * len(patients))) if len(patients) > 1 else 0
        val_patients = set(rng.permutation(patients)[:n_val].tolist())
        splits = {
            "train": [name for name in present if table[name][1] not in val_patients],
            "val": [name for name in present if table[name][1] in val_patients],
        }
        for split, members in splits.items():
            if not members:
                raise DataError(f"ChestX: no {split} images found under {root}/images*/ for the names in {split_list}")
        size = self.options.size
        sources = [split_list, *(images[name] for split in splits.values() for name in split)]
        options = {"size": size, "splits": splits}

        def decode() -> dict[str, np.ndarray | Iterator[np.ndarray]]:
            arrays = {}
            for split, members in splits.items():
                arrays[f"{split}_images"] = _load_images([images[name] for name in members], size)
                arrays[f"{split}_labels"] = np.stack([table[name][0] for name in members])
            return arrays

        arrays = cached_arrays("chestx", sources, options, decode)
        return (
            ArrayDataset(arrays["train_images"], arrays["train_labels"]),
            ArrayDataset(arrays["val_images"], arrays["val_labels"]),
        )


def _read_table(root: Path) -> dict[str, tuple[np.ndarray, str]]:
    """Image Index -> (multi-hot float32 over FINDINGS, Patient ID)."""
    path = next((root / name for name in CSV_NAMES if (root / name).is_file()), None)
    if path is None:
        raise DataError(f"ChestX label file not found: expected {' or '.join(str(root / n) for n in CSV_NAMES)}")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"ChestX label file {path} has no column {missing[0]!r} (columns: {reader.fieldnames})")
        table = {}
        for row in reader:
            findings = set(row["Finding Labels"].split("|"))
            labels = np.array([finding in findings for finding in FINDINGS], dtype=np.float32)
            table[row["Image Index"]] = (labels, row["Patient ID"])
    return table


def _load_images(paths: list[Path], size: int) -> Iterator[np.ndarray]:
    """Row blocks (1, 1, size, size) uint8 of an (N, 1, size, size) array, streamed into the cache an image at a
    time (`decoded_in_order`): grayscale (RGB/RGBA converted), shorter side resized, centre crop."""
    for image in decoded_in_order(lambda path: _load_image(path, size), paths):
        yield image[None, None]


def _load_image(path: Path, size: int) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"ChestX image {path} cannot be read as an image")
    height, width = image.shape
    scale = size / min(height, width)
    resized = cv2.resize(
        image, (max(size, round(width * scale)), max(size, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top : top + size, left : left + size]
