"""`synthetic3d_field`: geometry, seeded data, the targets (f per token on the training cells, the held-out cells
for validation), a field whose correlation follows the per-axis lengths, and the per-token model it needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from afpe.trainers import TrainConfig, build_task, task_info, train
from afpe.trainers.objectives import TokenRegression
from afpe.trainers.tasks.field3d import gaussian_field

SMALL = {"grid": [6, 5, 4], "lengths": [0.4, 0.3, 0.5], "n_train": 64, "n_val": 32}


def arrays(options: dict) -> tuple[np.ndarray, ...]:
    train_set, val_set = build_task("synthetic3d_field", options).datasets()
    return train_set.inputs, train_set.targets, val_set.inputs, val_set.targets


def test_geometry_follows_grid_and_patch() -> None:
    info = task_info("synthetic3d_field", {**SMALL, "patch": 2})
    assert (info.input_shape, info.patch_size, info.patch_grid) == ((1, 12, 10, 8), (2, 2, 2), (6, 5, 4))
    assert info.dense == "tokens" and info.n_outputs == 1 and info.default_metric == "r2" and "val_loss" in info.metrics
    x, y, vx, vy = arrays({**SMALL, "patch": 2})
    assert x.shape == (64, 1, 12, 10, 8) and vx.shape == (32, 1, 12, 10, 8)
    assert y.shape == (64, 120) and vy.shape == (32, 120) and y.dtype == np.float32


def test_data_are_decided_by_data_seed() -> None:
    first, again = arrays(SMALL), arrays(SMALL)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(first, again, strict=True))
    other = arrays({**SMALL, "data_seed": 1})
    assert not np.array_equal(first[1], other[1], equal_nan=True)


def test_targets_are_the_field_on_training_cells_and_validation_scores_only_held_out_cells() -> None:
    task = build_task("synthetic3d_field", SMALL)
    x, y, vx, vy = arrays(SMALL)
    train_cells, val_cells = task.split_cells()
    assert set(train_cells).isdisjoint(val_cells) and len(train_cells) + len(val_cells) == 120
    field = task.field.reshape(-1)
    assert np.array_equal(np.flatnonzero(np.isfinite(y[0])), train_cells)
    assert np.array_equal(np.flatnonzero(np.isfinite(vy[0])), val_cells)
    np.testing.assert_allclose(y[:, train_cells], np.broadcast_to(field[train_cells], (64, len(train_cells))))
    np.testing.assert_allclose(vy[:, val_cells], np.broadcast_to(field[val_cells], (32, len(val_cells))))
    # the input is noise, nothing in it marks a position
    assert abs(x.mean()) < 0.01 and x.std() == pytest.approx(0.1, rel=0.05)


def test_field_correlation_follows_the_per_axis_lengths() -> None:
    """Neighbour correlation along axis j is about exp(-spacing^2 / (2 l_j^2)): long along d0, short along d1."""
    grid, lengths = [16, 16, 1], [0.5, 0.08, 0.3]
    rng = np.random.default_rng(0)
    fields = [gaussian_field(grid, lengths, rng) for _ in range(20)]
    assert all(abs(f.mean()) < 1e-9 and abs(f.std() - 1) < 1e-9 for f in fields)
    along_0 = np.mean([np.corrcoef(f[:-1].ravel(), f[1:].ravel())[0, 1] for f in fields])
    along_1 = np.mean([np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1] for f in fields])
    spacing = 1 / 15
    assert along_0 == pytest.approx(np.exp(-(spacing**2) / (2 * 0.5**2)), abs=0.05)
    assert along_1 == pytest.approx(np.exp(-(spacing**2) / (2 * 0.08**2)), abs=0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"grid": [4, 4]}, "grid needs 3 values"), ({"lengths": [0.1, 0.0, 0.2]}, "lengths needs 3 values")],
)
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        task_info("synthetic3d_field", options)


def test_trains_through_the_loop_with_one_prediction_per_token() -> None:
    model = {"dim": 16, "depth": 1, "heads": 2}
    settings = {"encoding": "afpe", "scales": [1, 1, 1], "epochs": 1, "batch_size": 16, "num_threads": 2}
    result = train(TrainConfig(task="synthetic3d_field", task_options=SMALL, model=model, **settings))
    assert result["metric"] == "r2" and np.isfinite(result["metrics"]["val_loss"])


@pytest.mark.parametrize(("task", "pool"), [("synthetic3d_field", "mean"), ("synthetic3d", "tokens")])
def test_a_pool_that_does_not_fit_the_task_is_named(task: str, pool: str) -> None:
    config = TrainConfig(task=task, task_options={"n_train": 8, "n_val": 8}, model={"pool": pool}, epochs=1)
    with pytest.raises(ValueError, match="model.pool"):
        train(config)


def test_token_regression_scores_only_finite_targets_with_one_pooled_r2() -> None:
    objective = TokenRegression()
    targets = torch.tensor([[1.0, math.nan, -1.0], [1.0, math.nan, -1.0]])
    exact = torch.tensor([[1.0, 123.0, -1.0], [1.0, -50.0, -1.0]])  # the unscored token's output is ignored
    assert objective.evaluate(exact, targets) == {"r2": 1.0, "mae": 0.0, "rmse": 0.0, "val_loss": 0.0}
    half = exact * 0.5  # error 0.5 on every scored entry, Var of the scored targets = 1
    scores = objective.evaluate(half, targets)
    assert scores["val_loss"] == pytest.approx(0.25) and scores["r2"] == pytest.approx(0.75)
    assert scores["mae"] == pytest.approx(0.5) and scores["rmse"] == pytest.approx(0.5)


def test_anisotropy_strides_the_drawn_field_and_the_token_grid_shrinks_along_it() -> None:
    """The paper's protocol on the field: every a-th cell along d2 of the same draw, a tokens apart."""
    options = {"grid": [9, 1, 9], "lengths": [0.3, 0.3, 0.3], "n_train": 4, "n_val": 2}
    full = build_task("synthetic3d_field", options)
    for a, tokens in ((2, 5), (4, 3), (8, 2)):
        strided = build_task("synthetic3d_field", {**options, "anisotropy": [1, 1, a]})
        np.testing.assert_array_equal(strided.field, full.field[:, :, ::a])
        info = task_info("synthetic3d_field", {**options, "anisotropy": [1, 1, a]})
        assert info.patch_grid == (9, 1, tokens) and info.spacing == (1.0, 1.0, float(a))
        x, y, _, vy = arrays({**options, "anisotropy": [1, 1, a]})
        assert x.shape == (4, 1, 9, 1, tokens) and y.shape == (4, 9 * tokens) and vy.shape == (2, 9 * tokens)


def test_spacing_places_cells_in_mm_and_lengths_are_in_mm() -> None:
    """With `spacing`, the correlation between neighbours follows exp(-spacing^2 / (2 l^2)) in mm, and the token
    spacing reported for physical positions is the spacing in mm."""
    grid, lengths, spacing = [16, 16, 1], [2.0, 2.0, 1.0], [0.5, 2.0, 1.0]
    rng = np.random.default_rng(0)
    fields = [gaussian_field(grid, lengths, rng, spacing) for _ in range(20)]
    along_0 = np.mean([np.corrcoef(f[:-1].ravel(), f[1:].ravel())[0, 1] for f in fields])
    along_1 = np.mean([np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1] for f in fields])
    assert along_0 == pytest.approx(math.exp(-(0.5**2) / (2 * 2.0**2)), abs=0.05)
    assert along_1 == pytest.approx(math.exp(-(2.0**2) / (2 * 2.0**2)), abs=0.1)
    info = task_info("synthetic3d_field", {"grid": grid, "lengths": lengths, "spacing": spacing, "patch": 2})
    assert info.spacing == pytest.approx((0.5, 2.0, 1.0)) and info.units == ("mm", "mm", "mm")
    strided = task_info("synthetic3d_field", {"grid": grid, "lengths": lengths, "spacing": spacing, "anisotropy": 2})
    assert strided.patch_grid == (16, 16, 1) and strided.spacing == pytest.approx((0.5, 2.0, 2.0))
