"""Similarity maps: shape, centre, and the Fourier-feature decay law exp(−2π² Σ_j (scale·s_j)² Δp_j²)."""

from __future__ import annotations

import pytest
import torch

from afpe.encodings import build_encoding, fourier_similarity, similarity_map


@pytest.mark.parametrize("grid", [(11,), (9, 13), (5, 6, 7)])
def test_map_has_the_grid_shape_and_peaks_at_the_centre(grid: tuple[int, ...]) -> None:
    encoding = build_encoding("afpe", grid, 64, n_tokens=1)
    sims = similarity_map(encoding, grid)
    assert sims.shape == grid
    center = tuple(n // 2 for n in grid)
    assert sims[center] == pytest.approx(1.0)
    assert sims.max() == pytest.approx(1.0)


def test_map_accepts_the_table_and_a_chosen_centre_and_dot_metric() -> None:
    encoding = build_encoding("fourier", (6, 6), 32)
    table = encoding()
    assert torch.equal(similarity_map(table, (6, 6), center=(0, 5)), similarity_map(encoding, (6, 6), center=(0, 5)))
    dot = similarity_map(table, (6, 6), center=(0, 0), metric="dot")
    assert dot[0, 0] == pytest.approx(16.0)  # |γ(p)|² = Σ sin² + cos² = dim / 2


@pytest.mark.parametrize(
    "name, grid, scales, scale",
    [
        ("afpe", (15, 15), (1.0, 0.25), 1.0),
        ("afpe", (21, 9), (0.5, 2.0), 1.0),
        ("afpe", (7, 9, 11), (2.0, 1.0, 0.5), 0.8),
        ("fourier", (17, 17), None, 1.5),
        ("lsfpe", (13, 13), (0.3, 1.2), 1.0),
    ],
)
def test_fourier_similarity_follows_the_gaussian_decay_law(name: str, grid, scales, scale: float) -> None:
    encoding = build_encoding(name, grid, 8192, scales=scales, scale=scale, seed=11)
    effective = [scale * s for s in (scales or (1.0,) * len(grid))]
    measured = similarity_map(encoding, grid)
    expected = fourier_similarity(grid, effective)
    error = (measured - expected).abs()
    # Monte-Carlo noise of a mean of 4096 cosines: std <= 1/sqrt(2 * 4096) ≈ 0.011.
    assert error.mean() < 0.02
    assert error.max() < 0.06


def test_a_larger_scale_decays_faster_along_its_axis() -> None:
    sims = similarity_map(build_encoding("afpe", (15, 15), 512, scales=(2.0, 0.5)), (15, 15))
    assert sims[7 + 3, 7] < sims[7, 7 + 3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "l2"}, "valid metrics: cosine, dot"),
        ({"center": (6, 0)}, "center must be an index inside grid"),
        ({"center": (1,)}, "center must be an index inside grid"),
        ({"grid": (7, 7)}, "fewer than the 49"),
    ],
)
def test_bad_similarity_input_raises_value_error(kwargs: dict, message: str) -> None:
    arguments = {"grid": (6, 6)} | kwargs
    with pytest.raises(ValueError, match=message):
        similarity_map(build_encoding("afpe", (6, 6), 16)(), **arguments)
