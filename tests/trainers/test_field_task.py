"""`synthetic3d_field`: geometry, seeded data, the label structure (sum of the field over the lit cells, held-out
cells for validation) and a field whose correlation follows the per-axis lengths."""

from __future__ import annotations

import numpy as np
import pytest

from afpe.trainers import TrainConfig, build_task, task_info, train
from afpe.trainers.tasks.field3d import gaussian_field

SMALL = {"grid": [6, 5, 4], "lengths": [0.4, 0.3, 0.5], "n_train": 64, "n_val": 32}


def arrays(options: dict) -> tuple[np.ndarray, ...]:
    train_set, val_set = build_task("synthetic3d_field", options).datasets()
    return train_set.inputs, train_set.targets, val_set.inputs, val_set.targets


def test_geometry_follows_grid_and_patch() -> None:
    info = task_info("synthetic3d_field", {**SMALL, "patch": 2})
    assert (info.input_shape, info.patch_size, info.patch_grid) == ((1, 12, 10, 8), (2, 2, 2), (6, 5, 4))
    assert info.n_outputs == 1 and info.default_metric == "r2" and "val_loss" in info.metrics
    x, y, vx, vy = arrays({**SMALL, "patch": 2})
    assert x.shape == (64, 1, 12, 10, 8) and vx.shape == (32, 1, 12, 10, 8)
    assert y.shape == (64,) and y.dtype == np.float32
    # a patch is one cell: every 2x2x2 block of the input is constant up to the background noise
    assert np.array_equal(x[:, :, ::2, ::2, ::2] > 0.5, x[:, :, 1::2, 1::2, 1::2] > 0.5)


def test_data_are_decided_by_data_seed() -> None:
    first, again = arrays(SMALL), arrays(SMALL)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = arrays({**SMALL, "data_seed": 1})
    assert not np.array_equal(first[1], other[1])


def test_label_is_the_standardised_sum_of_the_field_over_lit_cells_and_validation_cells_are_held_out() -> None:
    task = build_task("synthetic3d_field", SMALL)
    x, y, vx, vy = arrays(SMALL)
    train_cells, val_cells = task.split_cells()
    assert set(train_cells).isdisjoint(val_cells) and len(train_cells) + len(val_cells) == 120
    lit, val_lit = x.reshape(64, -1) > 0.5, vx.reshape(32, -1) > 0.5
    assert not lit[:, val_cells].any() and not val_lit[:, train_cells].any()
    assert lit.any(axis=1).all()
    sums, val_sums = lit @ task.field.reshape(-1), val_lit @ task.field.reshape(-1)
    np.testing.assert_allclose(y, (sums - sums.mean()) / sums.std(), atol=1e-5)
    np.testing.assert_allclose(vy, (val_sums - sums.mean()) / sums.std(), atol=1e-5)


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


def test_trains_through_the_loop() -> None:
    model = {"dim": 16, "depth": 1, "heads": 2}
    settings = {"encoding": "afpe", "scales": [1, 1, 1], "epochs": 1, "batch_size": 16, "num_threads": 2}
    result = train(TrainConfig(task="synthetic3d_field", task_options=SMALL, model=model, **settings))
    assert result["metric"] == "r2" and np.isfinite(result["metrics"]["val_loss"])
