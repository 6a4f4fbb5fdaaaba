"""Real-format loaders on fixtures written in the published layouts: content, splits, caching, and one
clear error naming the path or column for every missing root, file or column."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from afpe.trainers import DataError, build_task
from afpe.trainers.tasks.base import normalize
from afpe.trainers.tasks.chestx import FINDINGS


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")}


def test_medmnist_reads_npz_strides_and_caches_outside_the_root(medmnist_root: Path, cache_dir: Path) -> None:
    before = files_under(medmnist_root)
    train, val = build_task("medmnist3d", {"anisotropy": "1,1,4"}, medmnist_root).datasets()
    raw = np.load(medmnist_root / "organmnist3d.npz")
    assert (len(train), len(val)) == (12, 6)
    x, y = train[5]
    assert x.shape == (1, 28, 28, 7) and x.dtype == torch.uint8, "pixels travel as uint8, normalised on the device"
    np.testing.assert_array_equal(x.numpy()[0], raw["train_images"][5][:, :, ::4])
    assert int(y) == int(raw["train_labels"][5, 0])
    assert files_under(medmnist_root) == before, "nothing is written into data_root"
    assert list(cache_dir.glob("medmnist3d/*/complete")), "decoded arrays are cached in AFPE_CACHE_DIR"


@pytest.mark.parametrize("task", ["medmnist3d", "chestx", "echonet"])
def test_uint8_batches_normalised_on_the_device_equal_the_former_host_side_floats(
    task: str, medmnist_root: Path, chestx_root: Path, echonet_root: Path
) -> None:
    root = {"medmnist3d": medmnist_root, "chestx": chestx_root, "echonet": echonet_root}[task]
    _, val = build_task(task, {}, root).datasets()
    (batch, _), *_ = DataLoader(val, batch_size=2)
    assert batch.dtype == torch.uint8
    former = torch.from_numpy(np.array(batch.numpy(), dtype=np.float32)).div_(255.0)  # the old to_input
    assert normalize(batch).dtype == torch.float32 and torch.equal(normalize(batch), former)
    floats = torch.rand(2, 3)
    assert normalize(floats) is floats, "float inputs (the synthetic tasks) pass unchanged"


def test_medmnist_cache_is_reused_and_keyed_by_options(medmnist_root: Path, cache_dir: Path) -> None:
    build_task("medmnist3d", {}, medmnist_root).datasets()
    build_task("medmnist3d", {}, medmnist_root).datasets()
    assert len(list(cache_dir.glob("medmnist3d/*/complete"))) == 1
    build_task("medmnist3d", {"anisotropy": 2}, medmnist_root).datasets()
    assert len(list(cache_dir.glob("medmnist3d/*/complete"))) == 2


def test_medmnist_64_and_binary_flags(tmp_path: Path, make_medmnist: Callable) -> None:
    make_medmnist(tmp_path, flag="adrenalmnist3d", size=64, n=4, classes=2)
    task = build_task("medmnist3d", {"flag": "adrenalmnist3d", "size": 64, "patch": 8}, tmp_path)
    train, _ = task.datasets()
    assert task.info().n_outputs == 2 and train[0][0].shape == (1, 64, 64, 64)


def test_chestx_reads_the_train_val_list_resized_multi_hot(chestx_root: Path) -> None:
    train, val = build_task("chestx", {"size": 32, "val_fraction": 0.25}, chestx_root).datasets()
    assert len(train) + len(val) == 18, "train_val_list.txt only; test_list.txt is held out"
    assert len(val) >= 2 and len(val) % 2 == 0, "whole patients (2 images each) go to validation"
    x, y = train[0]
    assert x.shape == (1, 32, 32) and y.shape == (len(FINDINGS),)
    labels = np.stack([np.asarray(val[i][1]) for i in range(len(val))] + [np.asarray(train[i][1]) for i in range(4)])
    assert set(np.unique(labels)) <= {0.0, 1.0} and labels.sum() > 0


def test_chestx_no_patient_in_both_splits(chestx_root: Path, cache_dir: Path) -> None:
    build_task("chestx", {"size": 16, "val_fraction": 0.3}, chestx_root).datasets()
    splits = json.loads(next(cache_dir.glob("chestx/*/complete")).read_text())["splits"]
    patients = {split: {name.split("_")[0] for name in names} for split, names in splits.items()}
    assert patients["train"] and patients["val"] and not patients["train"] & patients["val"]


def test_chestx_rgba_png_is_read_as_its_gray_content(chestx_root: Path) -> None:
    rgba_path = chestx_root / "images_001" / "images" / "00000001_000.png"
    rgba = cv2.imread(str(rgba_path), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    (chestx_root / "train_val_list.txt").write_text("00000001_000.png\n00000002_000.png\n")
    train, val = build_task("chestx", {"size": 40, "val_fraction": 0.5, "data_seed": 1}, chestx_root).datasets()
    image = next(ds for ds in (train, val) if ds[0][0].double().sum() == _gray_sum(rgba))[0][0]
    assert image.shape == (1, 40, 40)


def _gray_sum(rgba: np.ndarray) -> float:
    """Expected pixel sum of the RGBA fixture after grayscale + resize 48x40 -> 48x40 crop 40x40."""
    gray = rgba[..., 0].astype(np.float64)  # R = G = B
    top = (gray.shape[0] - 40) // 2
    return float(gray[top : top + 40].sum())


def test_chestx_older_csv_name_and_partial_download(tmp_path: Path, make_chestx: Callable) -> None:
    root = make_chestx(tmp_path / "x", csv_name="Data_Entry_2017.csv")
    (root / "images_002" / "images" / "00000002_000.png").unlink()
    with pytest.warns(UserWarning, match="1 of 18 images"):
        train, val = build_task("chestx", {"size": 16}, root).datasets()
    assert len(train) + len(val) == 17


def test_echonet_clips_pad_short_videos_and_validation_is_fixed(echonet_root: Path) -> None:
    task = build_task("echonet", {"size": 32}, echonet_root)
    train, val = task.datasets()
    assert (len(train), len(val)) == (3, 2)
    x, ef = train[2]  # the short video (10 frames < 16 x 4)
    assert x.shape == (1, 16, 32, 32) and float(ef) == pytest.approx(52.5)
    assert int(x[0, 3:].max()) == 0, "frames past the end are zero padding (10 frames, period 4: 3 real)"
    assert int(x[0, :3].min()) > 0
    first, again = val[0][0], val[0][0]
    assert (first == again).all(), "validation clips are deterministic"
    assert float(first[0, 0].double().mean()) == pytest.approx(60, abs=8), "the validation clip starts at frame 0"


def test_echonet_accepts_file_names_with_extension(tmp_path: Path, make_echonet: Callable) -> None:
    root = make_echonet(tmp_path / "e", with_ext=True)
    train, _ = build_task("echonet", {"size": 16}, root).datasets()
    assert train[0][0].shape == (1, 16, 16, 16)


def drop_column(path: Path, column: str) -> None:
    with path.open() as file:
        rows = list(csv.DictReader(file))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, [c for c in rows[0] if c != column])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != column} for row in rows)


@pytest.mark.parametrize("task", ["medmnist3d", "chestx", "echonet"])
def test_missing_or_unset_root_is_named(task: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="set data_root"):
        build_task(task).datasets()
    with pytest.raises(DataError, match=f"data_root {tmp_path / 'nowhere'} of task '{task}' is not a directory"):
        build_task(task, data_root=tmp_path / "nowhere").datasets()


def test_medmnist_missing_file_and_key_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"MedMNIST file {tmp_path / 'organmnist3d.npz'} not found"):
        build_task("medmnist3d", {}, tmp_path).datasets()
    np.savez(tmp_path / "organmnist3d.npz", train_images=np.zeros((2, 28, 28, 28), np.uint8))
    with pytest.raises(DataError, match="has no array 'train_labels'"):
        build_task("medmnist3d", {}, tmp_path).datasets()


@pytest.mark.parametrize("column", ["Image Index", "Finding Labels", "Patient ID"])
def test_chestx_missing_column_is_named(chestx_root: Path, column: str) -> None:
    drop_column(chestx_root / "Data_Entry_2017_v2020.csv", column)
    with pytest.raises(DataError, match=f"has no column '{column}'"):
        build_task("chestx", {}, chestx_root).datasets()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        (
            "Data_Entry_2017_v2020.csv",
            "label file not found: expected .*Data_Entry_2017_v2020.csv or .*Data_Entry_2017.csv",
        ),
        ("train_val_list.txt", "split list .*train_val_list.txt not found"),
        ("images_001", "images_002"),  # a partial download warns; all images gone is an error
    ],
)
def test_chestx_missing_files_are_named(chestx_root: Path, remove: str, message: str) -> None:
    target = chestx_root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    if remove.startswith("images"):
        shutil.rmtree(chestx_root / "images_002")
        with pytest.warns(UserWarning), pytest.raises(DataError, match="no train images found under"):
            build_task("chestx", {}, chestx_root).datasets()
        return
    with pytest.raises(DataError, match=message):
        build_task("chestx", {}, chestx_root).datasets()


@pytest.mark.parametrize("column", ["FileName", "EF", "Split"])
def test_echonet_missing_column_is_named(echonet_root: Path, column: str) -> None:
    drop_column(echonet_root / "FileList.csv", column)
    with pytest.raises(DataError, match=f"has no column '{column}'"):
        build_task("echonet", {}, echonet_root).datasets()


def test_echonet_missing_file_list_and_video_are_named(echonet_root: Path) -> None:
    (echonet_root / "Videos" / "0X0001.avi").unlink()
    with pytest.raises(DataError, match=f"EchoNet video {echonet_root / 'Videos' / '0X0001.avi'} not found"):
        build_task("echonet", {}, echonet_root).datasets()
    (echonet_root / "FileList.csv").unlink()
    with pytest.raises(DataError, match=f"EchoNet file list {echonet_root / 'FileList.csv'} not found"):
        build_task("echonet", {}, echonet_root).datasets()
