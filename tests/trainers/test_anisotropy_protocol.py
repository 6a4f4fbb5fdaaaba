"""The paper's anisotropy protocol in the phantoms: every strided volume still shows the target, and
`target=centre` regresses its centre (the shipped `anisotropy` campaign's shrinking token grid:
tests/search/test_campaign.py)."""

from __future__ import annotations

import numpy as np
import pytest

from afpe.trainers import build_task


@pytest.mark.parametrize("a", [1, 2, 4, 8])
def test_every_strided_phantom_shows_its_target(a: int) -> None:
    options = {"anisotropy": [1, 1, a], "size": 16, "patch": 2, "n_train": 200, "n_val": 1}
    images = build_task("synthetic3d", options).datasets()[0].inputs
    assert images.shape == (200, 1, 16, 16, -(-16 // a))
    assert (images.reshape(200, -1).max(axis=1) > 0.9).all(), "the target (1.0) is in every strided volume"


def test_centre_target_regresses_the_cube_centre() -> None:
    task = build_task("synthetic3d", {"target": "centre", "n_train": 32, "n_val": 8})
    images, centres = task.datasets()[0].inputs, task.datasets()[0].targets
    assert task.objective.n_outputs == 3 and centres.shape == (32, 3) and centres.dtype == np.float32
    assert ((centres >= 0) & (centres <= 1)).all()
    orthant = build_task("synthetic3d", {"n_train": 32, "n_val": 8}).datasets()[0]
    assert np.array_equal(orthant.inputs, images), "same volumes, another label"
    upper = (orthant.targets[:, None] >> np.arange(3)) & 1
    assert np.array_equal(upper == 1, centres > 0.5)
    first = np.round(centres[0] * 23).astype(int)
    assert images[0, 0, first[0], first[1], first[2]] == 1.0, "the bright cube is at its centre"
