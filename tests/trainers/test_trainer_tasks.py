"""Every registered task trains one tiny epoch through `train()` and reports its declared metrics."""

from __future__ import annotations

import math

import pytest

from afpe.trainers import TrainConfig, list_tasks, task_info, train

TINY = {"epochs": 1, "batch_size": 8, "limit": 16, "num_threads": 2, "model": {"dim": 32, "depth": 1, "heads": 2}}
SYNTHETIC = {"n_train": 16, "n_val": 16}
ROOTS = {"medmnist3d": "medmnist_root", "chestx": "chestx_root", "echonet": "echonet_root"}


def test_registry_lists_the_paper_tasks_and_the_phantoms() -> None:
    assert set(list_tasks()) >= {"synthetic2d", "synthetic3d", "synthetic_video", "medmnist3d", "chestx", "echonet"}


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown task 'ct'.*synthetic3d"):
        task_info("ct")


@pytest.mark.parametrize("task", ["synthetic2d", "synthetic3d", "synthetic_video", "medmnist3d", "chestx", "echonet"])
def test_each_task_trains_one_epoch(task: str, request: pytest.FixtureRequest) -> None:
    root = request.getfixturevalue(ROOTS[task]) if task in ROOTS else None
    options = SYNTHETIC if task.startswith("synthetic") else {}
    info = task_info(task, options)
    reports = []
    result = train(
        TrainConfig(task=task, task_options=options, encoding="afpe", data_root=root, **TINY),
        report=lambda epoch, metrics: reports.append((epoch, metrics)),
    )
    assert [epoch for epoch, _ in reports] == [1]
    assert set(reports[0][1]) == set(info.metrics) | {"train_loss"}
    assert result["epochs"] == 1 and result["best_epoch"] == 1 and result["seconds"] > 0
    assert result["metric"] == info.default_metric
    assert result["metrics"] == reports[0][1]
    assert math.isfinite(result["metrics"]["val_loss"]) and math.isfinite(result["metrics"]["train_loss"])


@pytest.mark.parametrize(
    ("task", "options", "shape", "patch", "grid"),
    [
        ("synthetic3d", {}, (1, 24, 24, 24), (4, 4, 4), (6, 6, 6)),
        ("synthetic3d", {"anisotropy": "1,1,4"}, (1, 24, 24, 6), (4, 4, 1), (6, 6, 6)),
        ("synthetic3d", {"anisotropy": 3}, (1, 24, 24, 8), (4, 4, 1), (6, 6, 8)),
        ("synthetic2d", {"anisotropy": [2, 1]}, (1, 16, 32), (2, 4), (8, 8)),
        ("medmnist3d", {"size": 64, "anisotropy": [1, 1, 4], "patch": 8}, (1, 64, 64, 16), (8, 8, 2), (8, 8, 8)),
        ("synthetic_video", {"anisotropy": [2, 1, 1]}, (1, 8, 32, 32), (2, 4, 4), (4, 8, 8)),
    ],
)
def test_anisotropy_strides_the_input_and_the_patches(
    task: str, options: dict, shape: tuple, patch: tuple, grid: tuple
) -> None:
    info = task_info(task, options)
    assert (info.input_shape, info.patch_size, info.patch_grid) == (shape, patch, grid)


def test_phantom_inputs_follow_the_anisotropic_stride() -> None:
    from afpe.trainers import build_task

    iso, _ = build_task("synthetic3d", {"n_train": 4, "n_val": 1}).datasets()
    aniso, _ = build_task("synthetic3d", {"n_train": 4, "n_val": 1, "anisotropy": "1,1,4"}).datasets()
    assert aniso[0][0].shape == (1, 24, 24, 6)
    assert (aniso[2][0] == iso[2][0][..., ::4]).all() and aniso[2][1] == iso[2][1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"anisotropy": [1, 4]}, "task_options.anisotropy needs 1 or 3 values"),
        ({"anisotropy": [1, 1, 0]}, "anisotropy"),
        ({"sizee": 3}, "sizee: Extra inputs are not permitted"),
    ],
)
def test_bad_task_options_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        task_info("synthetic3d", options)


def test_scales_must_match_the_patch_grid_axes() -> None:
    with pytest.raises(ValueError, match=r"scales needs one value per patch-grid axis \('rows', 'cols'\)"):
        train(TrainConfig(task="synthetic2d", scales=[1, 1, 1], task_options=SYNTHETIC, **TINY))


def test_unknown_metric_lists_the_task_metrics() -> None:
    with pytest.raises(ValueError, match="metric 'r2' is not reported by task 'synthetic2d'"):
        train(TrainConfig(task="synthetic2d", metric="r2", task_options=SYNTHETIC, **TINY))
