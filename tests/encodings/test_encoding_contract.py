"""The public contract of afpe.encodings, checked as properties over grids, dims, seeds and names."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from afpe.encodings import build_encoding, grid_positions, list_encodings

ALL = ["none", "learnable", "sincos", "fourier", "afpe", "lfpe", "lsfpe"]
RANDOM = ["learnable", "fourier", "afpe", "lfpe", "lsfpe"]
FOURIER_FAMILY = ["fourier", "afpe", "lfpe", "lsfpe"]

grids = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)


def test_registry_lists_every_published_encoding() -> None:
    assert set(ALL) <= set(list_encodings())


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(ALL), grid=grids, multiple=st.integers(1, 4), n_tokens=st.integers(0, 3))
def test_shape_is_tokens_first_then_grid(name: str, grid: tuple[int, ...], multiple: int, n_tokens: int) -> None:
    dim = 12 * multiple  # divisible by 2 * len(grid) for every grid, so every encoding accepts it
    table = build_encoding(name, grid, dim, n_tokens=n_tokens)()
    assert table.shape == (1, n_tokens + math.prod(grid), dim)
    assert table.dtype == torch.float32
    assert torch.isfinite(table).all()


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(RANDOM), grid=grids, seed=st.integers(0, 2**31))
def test_same_seed_same_encoding_and_global_rng_untouched(name: str, grid: tuple[int, ...], seed: int) -> None:
    state = torch.get_rng_state()
    first = build_encoding(name, grid, 24, seed=seed)()
    second = build_encoding(name, grid, 24, seed=seed)()
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_draw_differently(name: str) -> None:
    assert not torch.equal(build_encoding(name, (4, 5), 24, seed=0)(), build_encoding(name, (4, 5), 24, seed=1)())


def test_same_seed_same_encoding_in_another_process() -> None:
    code = (
        "from afpe.encodings import build_encoding;"
        "print(build_encoding('afpe', (3, 4, 5), 32, scales=(0.5, 1.0, 2.0), seed=7)().sum().item())"
    )
    here = build_encoding("afpe", (3, 4, 5), 32, scales=(0.5, 1.0, 2.0), seed=7)().sum().item()
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(there) == pytest.approx(here, abs=1e-6)


@pytest.mark.parametrize("grid", [(9,), (6, 7), (3, 4, 5)])
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_fourier_with_scale_c_is_afpe_with_all_scales_c(grid: tuple[int, ...], scale: float) -> None:
    isotropic = build_encoding("fourier", grid, 32, scale=scale, seed=3, n_tokens=1)()
    anisotropic = build_encoding("afpe", grid, 32, scales=(scale,) * len(grid), seed=3, n_tokens=1)()
    assert torch.equal(isotropic, anisotropic)


@pytest.mark.parametrize("grid, axis", [((6, 7), 0), ((6, 7), 1), ((3, 4, 5), 2), ((3, 4, 5), 0)])
def test_zero_scale_makes_afpe_constant_along_that_axis(grid: tuple[int, ...], axis: int) -> None:
    scales = [1.0] * len(grid)
    scales[axis] = 0.0
    table = build_encoding("afpe", grid, 16, scales=scales)()[0].reshape(*grid, 16)
    first = table.select(axis, 0).unsqueeze(axis)
    assert torch.allclose(table, first.expand_as(table))
    other = (axis + 1) % len(grid)
    assert not torch.allclose(table.select(other, 0), table.select(other, grid[other] - 1))


def test_afpe_default_scales_are_grid_over_max_grid() -> None:
    default = build_encoding("afpe", (4, 8, 16), 32, seed=2)()
    explicit = build_encoding("afpe", (4, 8, 16), 32, scales=(0.25, 0.5, 1.0), seed=2)()
    assert torch.equal(default, explicit)


def test_fourier_features_follow_the_published_formula() -> None:
    """γ(p) = [sin(2π p Bᵀ) ‖ cos(2π p Bᵀ)] with positions linspace(0, 1, n) row-major, extras at 2..3."""
    grid, dim = (3, 5), 8
    encoding = build_encoding("afpe", grid, dim, scales=(0.7, 1.3), scale=2.0, seed=4, n_tokens=2)
    frequencies = encoding.frequencies()
    gaussian = torch.randn(dim // 2, 2, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(frequencies, gaussian * torch.tensor([1.4, 2.6]))
    positions = torch.cat([torch.tensor([[2.0, 2.0], [3.0, 3.0]]), grid_positions(grid)])
    assert torch.allclose(positions[3], torch.tensor([0.0, 0.25]))  # row 0, col 1: row-major order
    angles = 2 * math.pi * positions @ frequencies.T
    assert torch.allclose(encoding()[0], torch.cat([angles.sin(), angles.cos()], dim=1), atol=1e-5)


def test_sincos_follows_the_published_layout() -> None:
    grid, dim = (4, 6), 16
    table = build_encoding("sincos", grid, dim, temperature=100.0, n_tokens=1)()[0]
    assert torch.equal(table[0], torch.zeros(dim))  # the extra token carries no position
    omega = 1.0 / 100.0 ** (torch.arange(4) / 4)
    row, col = 2, 5
    expected = torch.cat([(row * omega).sin(), (col * omega).sin(), (row * omega).cos(), (col * omega).cos()])
    assert torch.allclose(table[1 + row * grid[1] + col], expected, atol=1e-6)


def test_none_is_zeros_and_learnable_is_small_truncated_normal() -> None:
    assert torch.count_nonzero(build_encoding("none", (5, 5), 8, n_tokens=1)()) == 0
    table = build_encoding("learnable", (16, 16), 64)()
    assert table.abs().max() <= 0.04 + 1e-6
    assert 0.012 < table.std().item() < 0.02


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_reproduces_the_encoding(name: str) -> None:
    source = build_encoding(name, (3, 4, 2), 24, seed=0, n_tokens=1)
    with torch.no_grad():  # a "trained" state: learned values moved away from their initialisation
        for parameter in source.parameters():
            parameter.add_(0.5)
    target = build_encoding(name, (3, 4, 2), 24, seed=1, n_tokens=1)
    target.load_state_dict(source.state_dict())
    assert torch.equal(target(), source())


@pytest.mark.parametrize("name, learned", [("learnable", "table"), ("lfpe", "frequency"), ("lsfpe", "axis_scale")])
def test_learned_encodings_receive_gradients(name: str, learned: str) -> None:
    encoding = build_encoding(name, (4, 4), 16)
    (encoding()[0, :, 0] * torch.arange(16.0)).sum().backward()  # not sin² + cos², whose sum is constant
    parameter = dict(encoding.named_parameters())[learned]
    assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_lsfpe_keeps_its_fixed_draw_in_the_state_dict() -> None:
    state = build_encoding("lsfpe", (4, 4), 16, seed=5).state_dict()
    assert set(state) == {"gaussian", "axis_scale"}
    assert torch.equal(state["axis_scale"], torch.ones(2))


def test_fixed_encodings_have_no_parameters() -> None:
    for name in ["none", "sincos", "fourier", "afpe"]:
        assert not list(build_encoding(name, (4, 4), 16).parameters())


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("nope", {}, "valid encodings: none, learnable, sincos, fourier, afpe, lfpe, lsfpe"),
        ("fourier", {"dim": 15}, "even dim"),
        ("afpe", {"dim": 15}, "even dim"),
        ("lfpe", {"dim": 15}, "even dim"),
        ("lsfpe", {"dim": 15}, "even dim"),
        ("sincos", {"dim": 20, "grid": (4, 4, 4)}, "divisible by 2*len(grid) = 6"),
        ("afpe", {"scales": (1.0,)}, "one value per grid axis"),
        ("afpe", {"scales": (1.0, -0.5)}, ">= 0"),
        ("afpe", {"scales": (1.0, float("nan"))}, ">= 0"),
        ("fourier", {"scales": (1.0, 1.0)}, "use 'afpe' for per-axis scales"),
        ("fourier", {"scale": -1.0}, "scale must be"),
        ("afpe", {"grid": (4, 0)}, "integer >= 1"),
        ("afpe", {"grid": ()}, "1 to 3 axes"),
        ("afpe", {"grid": (2, 2, 2, 2)}, "1 to 3 axes"),
        ("none", {"dim": 0}, "dim must be"),
        ("none", {"n_tokens": -1}, "n_tokens must be"),
        ("sincos", {"temperature": 0.0}, "temperature must be"),
    ],
)
def test_bad_input_raises_value_error_saying_what_is_allowed(name: str, kwargs: dict, message: str) -> None:
    arguments = {"grid": (4, 4), "dim": 24} | kwargs
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        build_encoding(name, **arguments)
