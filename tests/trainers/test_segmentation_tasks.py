"""The volume segmentation tasks `msd` and `brats` on tiny NIfTI fixtures in both layouts (anisotropic 0.8 x 0.8 x 2.5
mm voxels, LPS affines): items, physical spacing, deterministic validation, seeded foreground-balanced crops, the
per-case cache, every data error, BraTS's label 4, and `afpe train` reporting Dice."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
import yaml

from afpe.trainers import build_task, task_info
from afpe.trainers.tasks.base import DataError
from afpe.trainers.tasks.volumes import header_spacing

SMALL = {"roi": [16, 16, 8], "patch": [4, 4, 2]}
VOLUME_SHAPE, VOLUME_SPACING = (40, 40, 12), (0.8, 0.8, 2.5)  # the fixtures' (conftest.VOLUME_*)


def test_info_comes_from_the_options_without_data() -> None:
    info = task_info("msd", {"labels": ["spleen"], "pixdim": [1.5, 1.5, 3.0]})
    assert info.input_shape == (1, 64, 64, 32) and info.patch_grid == (8, 8, 8) and info.n_outputs == 2
    assert info.metrics == {"dice": "maximize", "dice_spleen": "maximize", "val_loss": "minimize"}
    assert info.default_metric == "dice" and info.dense == "voxels"
    assert info.spacing == (12.0, 12.0, 12.0) and info.units == ("mm", "mm", "mm")
    assert task_info("msd", {"channels": 4}).spacing == (8.0, 8.0, 4.0)  # no pixdim, no data: 1 voxel
    assert task_info("msd", {}).units == ("voxel", "voxel", "voxel")
    brats = task_info("brats")
    assert brats.input_shape == (4, 64, 64, 64) and brats.n_outputs == 4
    assert set(brats.metrics) == {"dice", "dice_ncr", "dice_ed", "dice_et", "val_loss"}


@pytest.mark.parametrize(
    ("options", "field"),
    [({"roi": [16, 16, 6], "patch": [4, 4, 4]}, "multiple of patch"), ({"window": [0, 1]}, "window"),
     ({"pixdim": [1, 0, 1]}, "pixdim"), ({"ct_window": [5, 1]}, "ct_window"),
     ({"roi": [36, 36, 12], "patch": [6, 6, 2]}, "patch: .*powers of two")],
)  # fmt: skip
def test_bad_options_name_the_option(options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"task_options of 'msd': .*{field}"):
        build_task("msd", options)


@pytest.mark.parametrize("task", ["msd", "brats"])
def test_items_are_float_images_and_class_labels_of_the_roi(task: str, msd_root: Path, brats_root: Path) -> None:
    root, channels, classes = (msd_root, 1, 2) if task == "msd" else (brats_root, 4, 4)
    train, val = build_task(task, SMALL, root).datasets()
    assert (len(train), len(val)) == ((4, 1) if task == "msd" else (3, 1))
    for image, label in [val[0], train.draw(0, np.random.default_rng(1))]:
        assert image.shape == (channels, 16, 16, 8) and image.dtype == torch.float32
        assert label.shape == (16, 16, 8) and label.dtype == torch.int64
        assert 0 <= int(label.min()) and int(label.max()) < classes
    image, label = val[0]
    assert label.unique().tolist() == list(range(classes))  # centred on the nested blobs: every class is in view
    # the blob's intensity marks its class: z-scored (brats) or windowed (msd: none given: z-scored too)
    assert image[:, label > 0].mean() > image[:, label == 0].mean() + 1.0


def test_msd_4d_images_are_channels_and_a_ct_window_scales_to_0_1(
    tmp_path: Path, make_msd: Callable[..., Path]
) -> None:
    root = make_msd(tmp_path / "Task01", cases=3, labels=("edema", "non-enhancing", "enhancing"), channels=4)
    task = build_task("msd", {**SMALL, "channels": 4, "labels": ["edema", "non-enhancing", "enhancing"]}, root)
    image, label = task.datasets()[1][0]
    assert image.shape == (4, 16, 16, 8) and label.unique().tolist() == [0, 1, 2, 3]
    ct = build_task("msd", {**SMALL, "ct_window": [-150, 350]}, make_msd(tmp_path / "Task09", cases=2))
    image, label = ct.datasets()[1][0]
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image[:, label == 0].mean()) == pytest.approx(50 / 500, abs=0.03)  # -100 HU in [-150, 350]


def test_spacing_is_read_from_the_headers_in_ras_order_and_pixdim_resamples(msd_root: Path, tmp_path: Path) -> None:
    task = build_task("msd", SMALL, msd_root)
    assert task.voxel_spacing == VOLUME_SPACING and task.axis_units == ("mm", "mm", "mm")
    assert task.info().spacing == pytest.approx((3.2, 3.2, 5.0))
    # a volume stored slice-first (voxel axis 0 along S): its RAS spacing puts the 2.5 mm last
    affine = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1.0]])
    nibabel.save(nibabel.Nifti1Image(np.zeros((12, 40, 40), np.float32), affine), tmp_path / "sagittal.nii.gz")
    assert header_spacing(tmp_path / "sagittal.nii.gz") == VOLUME_SPACING
    for pixdim in ([1.6, 1.6, 2.5], [1.0, 1.0, 5.0]):
        resampled = build_task("msd", {**SMALL, "pixdim": pixdim}, msd_root)
        assert resampled.voxel_spacing == tuple(pixdim)
        shape = resampled.datasets()[0].volumes[0]["label"].shape
        # the extent between the first and last voxel centres, (n - 1) h, is kept within one output voxel
        for size, n, h, out in zip(shape, VOLUME_SHAPE, VOLUME_SPACING, pixdim, strict=True):
            assert abs((size - 1) - (n - 1) * h / out) <= 1, (shape, pixdim)


def test_validation_is_deterministic_and_centred_on_the_foreground(brats_root: Path) -> None:
    first = build_task("brats", SMALL, brats_root).datasets()[1]
    again = build_task("brats", SMALL, brats_root).datasets()[1]
    for index in range(len(first)):
        (image, label), (image2, label2) = first[index], again[index]
        assert torch.equal(image, image2) and torch.equal(label, label2)
        assert label[8, 8, 4] > 0  # the roi's centre voxel is inside the blob


def test_training_crops_are_seeded_and_centred_on_foreground_at_the_set_rate(msd_root: Path) -> None:
    train = build_task("msd", {**SMALL, "foreground_fraction": 0.5}, msd_root).datasets()[0]
    draws = [train.draw(index, np.random.default_rng((0, epoch, index))) for epoch in range(50) for index in range(4)]
    again = train.draw(2, np.random.default_rng((0, 7, 2)))
    assert torch.equal(again[0], draws[7 * 4 + 2][0]) and torch.equal(again[1], draws[7 * 4 + 2][1])
    assert not torch.equal(draws[0][0], draws[4][0])  # another epoch, another crop
    centred = np.mean([float(label[8, 8, 4] > 0) for _, label in draws])
    assert 0.4 <= centred <= 0.7, centred  # 0.5, plus background centres moved into the volume onto the blob
    always = build_task("msd", {**SMALL, "foreground_fraction": 1.0}, msd_root).datasets()[0]
    assert all(always.draw(i % 4, np.random.default_rng(i))[1][8, 8, 4] > 0 for i in range(40))


def test_each_case_is_decoded_once_into_the_cache(msd_root: Path, cache_dir: Path) -> None:
    build_task("msd", SMALL, msd_root).prepare()
    entries = sorted(cache_dir.glob("msd/*/complete"))
    assert len(entries) == 5
    stamps = [entry.stat().st_mtime_ns for entry in entries]
    train, _ = build_task("msd", {**SMALL, "foreground_fraction": 0.9}, msd_root).datasets()  # crops: same entries
    assert sorted(cache_dir.glob("msd/*/complete")) == entries and [e.stat().st_mtime_ns for e in entries] == stamps
    image = train.volumes[0]["image"]
    assert image.shape == (1, *VOLUME_SHAPE)  # CT-like, no zero voxels: nothing cropped
    assert isinstance(image, np.memmap) and Path(image.filename).parent in {e.parent for e in entries}
    build_task("msd", {**SMALL, "pixdim": [1.6, 1.6, 2.5]}, msd_root).prepare()  # another shaping: new entries
    assert len(list(cache_dir.glob("msd/*/complete"))) == 10


def test_brats_2021_label_4_becomes_class_3_and_2023_names_are_read(
    tmp_path: Path, make_brats: Callable[..., Path]
) -> None:
    for version in ("2021", "2023"):
        root = make_brats(tmp_path / version, cases=2, version=version)
        seg = next(root.glob("*/*seg.nii.gz"))
        written = np.unique(np.asarray(nibabel.load(seg).dataobj)).tolist()
        assert written == ([0, 1, 2, 4] if version == "2021" else [0, 1, 2, 3])
        train, val = build_task("brats", SMALL, root).datasets()
        assert [np.unique(v["label"]).tolist() for v in train.volumes + val.volumes] == [[0, 1, 2, 3]] * 2
    # the MRI path crops the zero surround (2 voxels in x and y) before the z-score, cached in float16
    image = train.volumes[0]["image"]
    assert image.shape == (4, 36, 36, 12) and image.dtype == np.float16


def _rewrite_label(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    volume = nibabel.load(path)
    nibabel.save(nibabel.Nifti1Image(change(np.asarray(volume.dataobj)), volume.affine), path)


def _listing(root: Path, change: Callable[[dict], object]) -> None:
    data = json.loads((root / "dataset.json").read_text())
    change(data)
    (root / "dataset.json").write_text(json.dumps(data))


BRATS_CASE = "BraTS2021_00000/BraTS2021_00000"
#: (id, layout, options, damage to the fixture, the message with {r} = the data root)
DATA_ERRORS = [
    ("msd-no-dataset-json", "msd", {}, lambda r: (r / "dataset.json").unlink(), "Decathlon {r}/dataset.json not found"),
    ("msd-no-training-key", "msd", {}, lambda r: _listing(r, lambda d: d.pop("training")),
     "{r}/dataset.json has no key 'training'"),
    ("msd-labels-count", "msd", {"labels": ["a", "b"]}, None,
     "task_options.labels names 2 foreground class(es) ['a', 'b'], {r}/dataset.json declares 1: ['spleen']"),
    ("msd-channels", "msd", {"channels": 2}, None,
     "task_options.channels is 2, {r}/dataset.json lists 1 modalities: ['CT']"),
    ("msd-listed-file-absent", "msd", {}, lambda r: (r / "labelsTr/case_001.nii.gz").unlink(),
     "Decathlon file {r}/labelsTr/case_001.nii.gz not found (listed in dataset.json)"),
    ("msd-no-images-folder", "msd", {}, lambda r: (r / "imagesTr").rename(r / "images"),
     "Decathlon folder {r}/imagesTr not found"),
    ("msd-label-value", "msd", {}, lambda r: _rewrite_label(r / "labelsTr/case_002.nii.gz", lambda a: a * 2),
     "{r}/labelsTr/case_002.nii.gz: label value(s) 2 outside the declared classes' values [0, 1]"),
    ("msd-shape-mismatch", "msd", {}, lambda r: _rewrite_label(r / "labelsTr/case_000.nii.gz", lambda a: a[..., :10]),
     "{r}/labelsTr/case_000.nii.gz: label shape (40, 40, 10) differs from the image's (40, 40, 12)"),
    ("msd-unreadable", "msd", {}, lambda r: (r / "imagesTr/case_001.nii.gz").write_bytes(b"not a volume"),
     "cannot read case 'case_001' ({r}/imagesTr/case_001.nii.gz, {r}/labelsTr/case_001.nii.gz)"),
    ("brats-no-modality", "brats", {}, lambda r: (r / f"{BRATS_CASE}_flair.nii.gz").unlink(),
     f"BraTS case BraTS2021_00000: {{r}}/{BRATS_CASE}_flair.nii.gz not found"),
    ("brats-no-seg", "brats", {}, lambda r: (r / f"{BRATS_CASE}_seg.nii.gz").unlink(),
     f"BraTS case BraTS2021_00000: {{r}}/{BRATS_CASE}_seg.nii.gz not found"),
    ("brats-label-value", "brats", {}, lambda r: _rewrite_label(r / f"{BRATS_CASE}_seg.nii.gz", lambda a: a * 0 + 3),
     f"{{r}}/{BRATS_CASE}_seg.nii.gz: label value(s) 3 outside the declared classes' values [0, 1, 2, 4]"),
    ("brats-no-case-folder", "brats", {}, lambda r: [p.rename(r / f"case{i}") for i, p in enumerate(r.iterdir())],
     "BraTS data_root {r} has no case folder"),
    ("brats-one-case", "brats", {}, lambda r: shutil.rmtree(r / "BraTS2021_00001"),
     "brats: 2 labelled cases or more needed in {r}, found 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("layout", "options", "damage", "message"), [case[1:] for case in DATA_ERRORS], ids=[c[0] for c in DATA_ERRORS]
)
def test_data_errors_name_the_folder_file_or_key(
    tmp_path: Path,
    make_msd: Callable[..., Path],
    make_brats: Callable[..., Path],
    layout: str,
    options: dict,
    damage: Callable[[Path], object] | None,
    message: str,
) -> None:
    root = make_msd(tmp_path / "data", cases=3) if layout == "msd" else make_brats(tmp_path / "data", cases=2)
    if damage is not None:
        damage(root)
    with pytest.raises(DataError, match=re.escape(message.format(r=root))):
        build_task(layout, {**SMALL, **options}, root).datasets()


def test_a_task_without_data_root_asks_for_it() -> None:
    with pytest.raises(DataError, match=re.escape("task 'brats' reads a dataset: set data_root (--data-root DIR)")):
        build_task("brats", SMALL).datasets()


def afpe_train(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AFPE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "afpe.service", "train", "--epochs", "2", "--batch-size", "2", "--threads", "2"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300)


def test_afpe_train_reports_dice_on_both_layouts_with_physical_positions(
    msd_root: Path, brats_root: Path, cache_dir: Path
) -> None:
    small = [f"--option={key}={','.join(map(str, value))}" for key, value in SMALL.items()]
    msd = ["--task", "msd", "--data-root", str(msd_root), "--option", "labels=spleen"]
    run = afpe_train(*msd, *small, "--positions", "physical", cache=cache_dir)
    assert run.returncode == 0, run.stderr
    assert "best epoch" in run.stdout and re.search(r"dice_spleen\s+0\.\d+", run.stdout), run.stdout
    rows = [line for line in run.stdout.splitlines() if re.fullmatch(r"  \w+ +\S+", line)]
    assert len(rows) == 4 and len({line.rindex(" ") for line in rows}) == 1, run.stdout  # one value column
    assert "positions physical: scales in cycles per 20 mm (token spacing x: 3.2 mm, y: 3.2 mm, z: 5 mm)" in run.stdout
    run = afpe_train(
        "--task", "brats", "--data-root", str(brats_root), *small, "--encoding", "afpe", "--scales", "1,1,0.5",
        "--positions", "physical", "--json", cache=cache_dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["metric"] == "dice" and summary["positions"] == "physical"
    assert set(summary["metrics"]) == {"dice", "dice_ncr", "dice_ed", "dice_et", "val_loss", "train_loss"}
    assert 0.0 <= summary["metrics"]["dice"] <= 1.0


def test_the_brain_tumour_layout_trains_with_no_option(tmp_path: Path, make_msd: Callable[..., Path]) -> None:
    """Task01_BrainTumour's dataset.json declares 3 labels and 4 modalities: they are the defaults."""
    labels = ("edema", "non-enhancing tumour", "enhancing tumour")
    root = make_msd(tmp_path / "Task01_BrainTumour", cases=3, labels=labels, channels=4)
    task = build_task("msd", {}, root)
    assert (task.class_names, task.channels) == (("background", *labels), 4)
    assert task.info().input_shape == (4, 64, 64, 32) and task.info().n_outputs == 4
    run = afpe_train("--task", "msd", "--data-root", str(root), "--limit", "2", "--json", cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    metrics = json.loads(run.stdout.strip().splitlines()[-1])["metrics"]
    assert {"dice_edema", "dice_non-enhancing tumour", "dice_enhancing tumour"} <= set(metrics)
    with pytest.raises(DataError, match=r"task_options.channels is 1, .*dataset.json lists 4 modalities"):
        build_task("msd", {"channels": 1}, root).datasets()  # an explicit value that disagrees is still refused


def test_the_shipped_segmentation_specs_read_their_tasks_without_data() -> None:
    studies = Path(__file__).resolve().parents[2] / "studies"
    spleen = yaml.safe_load((studies / "msd-spleen-afpe.yaml").read_text())
    info = build_task(spleen["task"], spleen["task_options"]).info()
    assert (spleen["task"], spleen["metric"], spleen["trainer"]["positions"]) == ("msd", "dice", "physical")
    assert info.units == ("mm", "mm", "mm") and info.spacing == (24.0, 24.0, 20.0)  # pixdim x patch
    assert info.positions_note("physical").startswith("positions physical: scales in cycles per 192 mm")
    brats = yaml.safe_load((studies / "brats-afpe.yaml").read_text())
    assert (brats["task"], brats["metric"], brats["ratio"]) == ("brats", "dice", ["z", "xy"])
    assert task_info(brats["task"], brats["task_options"]).patch_grid == (8, 8, 8)
