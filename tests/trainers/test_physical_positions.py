"""Physical positions in the trainer: each task's token spacing and units, the ViT's encoding, the reference length's
law, the settings' validation, checkpoint identity and `afpe train --positions physical`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from afpe.encodings import build_encoding
from afpe.trainers import TrainConfig, build_task, train
from afpe.trainers.model_file import model_arguments
from afpe.trainers.resume_state import checkpoint_path
from afpe.trainers.vit import ViT

SMALL = {
    "task": "synthetic2d",
    "task_options": {"n_train": 16, "n_val": 16},
    "epochs": 1,
    "batch_size": 8,
    "num_threads": 2,
    "model": {"dim": 32, "depth": 1, "heads": 2},
}


@pytest.mark.parametrize(
    ("task", "options", "grid", "spacing", "units", "reference"),
    [
        # the stride is the spacing of the original isotropic grid: strided patches (4, 4, 1) x (1, 1, 3)
        ("synthetic3d", {"anisotropy": [1, 1, 3]}, (6, 6, 8), (4.0, 4.0, 3.0), ("voxel",) * 3, 24.0),
        ("synthetic2d", {}, (8, 8), (4.0, 4.0), ("pixel", "pixel"), 32.0),
        ("synthetic_video", {"anisotropy": [2, 1, 1]}, (4, 8, 8), (4.0, 4.0, 4.0), ("frame", "pixel", "pixel"), 32.0),
        # every 4th frame of the source video, 112-pixel frames resized to 56: 2 source pixels per pixel
        ("echonet", {"size": 56}, (4, 7, 7), (16.0, 16.0, 16.0), ("frame", "pixel", "pixel"), 112.0),
    ],
)
def test_tasks_report_their_token_spacing_and_units(task, options, grid, spacing, units, reference) -> None:
    info = build_task(task, options).info()
    assert (info.patch_grid, info.spacing, info.units) == (grid, spacing, units)
    assert info.reference_length() == reference
    assert info.encoding_spacing("normalized") is None
    assert info.encoding_spacing("physical") == pytest.approx(tuple(h / reference for h in spacing))
    assert f"scales in cycles per {reference:g} {units[-1]}" in info.positions_note("physical")


def vit_table(config: TrainConfig) -> torch.Tensor:
    return ViT(**model_arguments(config, build_task(config.task, config.task_options).info())).pos_embed()


def test_the_vit_encodes_physical_positions_and_the_reference_length_obeys_the_law() -> None:
    base = {**SMALL, "task": "synthetic3d", "task_options": {"anisotropy": [1, 1, 3]}, "encoding": "afpe"}
    physical = TrainConfig(**base, positions="physical", scales=[1.0, 2.0, 0.5], reference_length=10.0)
    spacing = (0.4, 0.4, 0.3)  # (4, 4, 3) voxels over 10
    expected = build_encoding("afpe", (6, 6, 8), 32, scales=[1.0, 2.0, 0.5], n_tokens=1, spacing=spacing)
    assert torch.equal(vit_table(physical), expected())
    assert not torch.allclose(vit_table(physical), vit_table(TrainConfig(**base, scales=[1.0, 2.0, 0.5])))
    # spacing / L: a reference length k times longer is a spacing k times shorter, i.e. scales k times larger
    k = 4.0
    longer = TrainConfig(**base, positions="physical", scales=[k * 1.0, k * 2.0, k * 0.5], reference_length=10.0 * k)
    assert torch.allclose(vit_table(longer), vit_table(physical), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("field", "value"), [("positions", "normalised"), ("reference_length", 0.0), ("reference_length", -2.0)]
)
def test_bad_positions_settings_are_refused_naming_the_field(field, value) -> None:
    with pytest.raises(ValidationError, match=field):
        TrainConfig(**SMALL, **{field: value})


def test_checkpoints_keep_their_positions(tmp_path: Path) -> None:
    train(TrainConfig(**SMALL), checkpoint_dir=tmp_path)
    identity = torch.load(checkpoint_path(tmp_path), weights_only=True)["identity"]
    # normalized runs keep the identity checkpoints had before the option, so those still resume
    assert "positions" not in identity and "reference_length" not in identity
    with pytest.raises(ValueError, match="belongs to another run: positions was None, now 'physical'"):
        train(TrainConfig(**{**SMALL, "epochs": 2}, positions="physical"), checkpoint_dir=tmp_path)


def test_afpe_train_with_physical_positions_names_the_unit(cache_dir: Path) -> None:
    options = ["--option", "n_train=16", "--option", "n_val=16", "--option", "anisotropy=1,2"]
    run = subprocess.run(
        [sys.executable, "-m", "afpe.service", "train", "--task", "synthetic2d", "--encoding", "afpe"]
        + ["--positions", "physical", "--epochs", "1", "--batch-size", "8", "--threads", "2", *options],
        capture_output=True,
        text=True,
        env={**os.environ, "AFPE_CACHE_DIR": str(cache_dir)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (
        "positions physical: scales in cycles per 32 pixel (token spacing rows: 4 pixel, cols: 4 pixel)" in run.stdout
    )
    bad = subprocess.run(
        [sys.executable, "-m", "afpe.service", "train", "--task", "synthetic2d", "--positions", "physical"]
        + ["--reference-length", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "reference_length" in bad.stderr and "Traceback" not in bad.stderr
