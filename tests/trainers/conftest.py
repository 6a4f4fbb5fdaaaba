"""Dataset fixtures written in the published formats (MedMNIST npz, EchoNet FileList + AVI; ChestX, Decathlon and
BraTS NIfTI in tests/conftest.py), tiny, and a private cache folder per test."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

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
