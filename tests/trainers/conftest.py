"""Dataset fixtures written in the published formats (MedMNIST npz, NIH ChestX CSV + PNG, EchoNet
FileList + AVI, Decathlon and BraTS NIfTI), tiny, and a private cache folder per test."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

#: The fixtures' voxel size in mm (x, y, z): thin in-plane, thick slices, as in the Decathlon's CT tasks.
VOLUME_SPACING = (0.8, 0.8, 2.5)
VOLUME_SHAPE = (40, 40, 12)
BRATS_SURROUND = 2
BRATS_SUFFIXES = {"2021": ("_", ("t1", "t1ce", "t2", "flair"), 4), "2023": ("-", ("t1n", "t1c", "t2w", "t2f"), 3)}

ECHONET_COLUMNS = ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS", "NumberOfFrames", "Split"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test decodes into its own cache (AFPE_CACHE_DIR), never ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("AFPE_CACHE_DIR", str(path))
    return path


def write_medmnist(root: Path, flag: str = "organmnist3d", size: int = 28, n: int = 12, classes: int = 11) -> Path:
    """`{flag}.npz` / `{flag}_64.npz` with uint8 volumes (N, S, S, S) and int labels (N, 1); the volume's
    mean intensity encodes the label so a model can learn it."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", n), ("val", n // 2), ("test", n // 2)):
        labels = np.arange(count) % classes
        volumes = rng.integers(0, 40, (count, size, size, size)).astype(np.uint8) + (labels * 20)[:, None, None, None]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = volumes.astype(np.uint8), labels[:, None]
    root.mkdir(parents=True, exist_ok=True)
    path = root / (f"{flag}.npz" if size == 28 else f"{flag}_64.npz")
    np.savez_compressed(path, **arrays)
    return path


def write_echonet(root: Path, videos: int = 6, frames: int = 40, short_frames: int = 10, with_ext: bool = False):
    """EchoNet layout: FileList.csv and Videos/<name>.avi (112 x 112, RGB-encoded grayscale, MJPG);
    the last training video is short (fewer frames than a 16 x 4 clip) to exercise padding."""
    (root / "Videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(videos):
        name = f"0X{index:04X}"
        split = ("TRAIN", "TRAIN", "VAL", "TRAIN", "VAL", "TEST")[index % 6]
        count = short_frames if index == 3 else frames
        writer = cv2.VideoWriter(str(root / "Videos" / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 50, (112, 112))
        for frame in range(count):
            gray = np.full((112, 112), (index * 30 + frame * 3) % 255, np.uint8)
            writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        writer.release()
        ef = 30.0 + 7.5 * index
        rows.append([f"{name}.avi" if with_ext else name, ef, 40, 80, 112, 112, 50, count, split])
    with (root / "FileList.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ECHONET_COLUMNS)
        writer.writerows(rows)
    return root


def write_nifti(path: Path, array: np.ndarray, spacing: Sequence[float] = VOLUME_SPACING) -> Path:
    """`array` as a NIfTI file whose affine has voxel size `spacing` (mm) and LPS orientation (x and y flipped, as
    scanners write them), so a reader must reorient to RAS."""
    import nibabel

    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(array, affine), path)
    return path


def blob_case(
    index: int, shape: Sequence[int], spacing: Sequence[float], classes: int, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """A learnable case: nested ellipsoids of classes 1..classes (radius 9 mm shrinking by 3 mm per class, the same
    in mm along every axis, so fewer voxels along the thick z), at a centre that moves with `index`; image (shape)
    or (shape + (channels,)) float32 whose intensity marks the class (HU-like: background around -100, class k around
    100 k; channel c adds 10 c) plus noise; label (shape) uint8 with classes 0..classes."""
    rng = np.random.default_rng(index)
    axes = [np.arange(n) * h for n, h in zip(shape, spacing, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    shift = np.array([index % 3 - 1, index % 2, 0]) * 4.0
    centre = np.array([(n * h) / 2 for n, h in zip(shape, spacing, strict=True)]) + shift
    distance = np.linalg.norm(grid - centre, axis=-1)
    label = np.zeros(shape, np.uint8)
    for cls in range(1, classes + 1):
        label[distance <= 9.0 - 3.0 * (cls - 1)] = cls
    base = np.where(label > 0, 100.0 * label, -100.0) + rng.normal(0, 10, shape)
    image = np.stack([base + 10 * c for c in range(channels)], axis=-1) if channels > 1 else base
    return image.astype(np.float32), label


def write_msd(
    root: Path,
    cases: int = 5,
    labels: Sequence[str] = ("spleen",),
    channels: int = 1,
    shape: Sequence[int] = VOLUME_SHAPE,
    spacing: Sequence[float] = VOLUME_SPACING,
) -> Path:
    """A Decathlon task folder: dataset.json ("labels", "modality", "training"), imagesTr/ and labelsTr/ with
    `cases` blob volumes (4D images when `channels` > 1, as Task01_BrainTumour's)."""
    training = []
    for index in range(cases):
        name = f"case_{index:03d}.nii.gz"
        image, label = blob_case(index, shape, spacing, len(labels), channels)
        write_nifti(root / "imagesTr" / name, image, spacing)
        write_nifti(root / "labelsTr" / name, label, spacing)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    listing = {
        "name": "Fixture",
        "labels": {"0": "background", **{str(k + 1): name for k, name in enumerate(labels)}},
        "modality": {str(c): "CT" if channels == 1 else f"MR{c}" for c in range(channels)},
        "numTraining": cases,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(listing, indent=1))
    return root


def write_brats(
    root: Path,
    cases: int = 4,
    version: str = "2021",
    shape: Sequence[int] = VOLUME_SHAPE,
    spacing: Sequence[float] = VOLUME_SPACING,
) -> Path:
    """BraTS case folders in the 2021 (`BraTS2021_00000/BraTS2021_00000_t1.nii.gz`, seg labels 0, 1, 2, 4) or
    2023 naming (`BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz`, labels 0, 1, 2, 3): classes 1..3 as blobs,
    one file per modality, MRI-like: positive intensities in a "brain" with a zero surround of `BRATS_SURROUND`
    voxels in x and y, as skull-stripped BraTS volumes have."""
    separator, modalities, enhancing = BRATS_SUFFIXES[version]
    for index in range(cases):
        name = f"BraTS2021_{index:05d}" if version == "2021" else f"BraTS-GLI-{index:05d}-000"
        image, label = blob_case(index, shape, spacing, 3, 4)
        image += 200.0
        surround = np.ones(shape[:2], bool)
        surround[BRATS_SURROUND:-BRATS_SURROUND, BRATS_SURROUND:-BRATS_SURROUND] = False
        image[surround] = 0.0
        label[label == 3] = enhancing
        for channel, suffix in enumerate(modalities):
            write_nifti(root / name / f"{name}{separator}{suffix}.nii.gz", image[..., channel], spacing)
        write_nifti(root / name / f"{name}{separator}seg.nii.gz", label, spacing)
    return root


@pytest.fixture
def msd_root(tmp_path: Path) -> Path:
    return write_msd(tmp_path / "Task09_Spleen")


@pytest.fixture
def brats_root(tmp_path: Path) -> Path:
    return write_brats(tmp_path / "brats2021")


@pytest.fixture
def medmnist_root(tmp_path: Path) -> Path:
    write_medmnist(tmp_path / "medmnist")
    return tmp_path / "medmnist"


@pytest.fixture
def chestx_root(tmp_path: Path, make_chestx) -> Path:  # noqa: ANN001
    return make_chestx(tmp_path / "chestx")


@pytest.fixture
def echonet_root(tmp_path: Path) -> Path:
    return write_echonet(tmp_path / "echonet")


@pytest.fixture
def make_medmnist():
    """The MedMNIST writer, for tests that need another flag or size."""
    return write_medmnist


@pytest.fixture
def make_echonet():
    return write_echonet


@pytest.fixture
def make_msd():
    """The Decathlon writer (`write_msd`), for tests that need more labels, channels or damage."""
    return write_msd


@pytest.fixture
def make_brats():
    return write_brats
