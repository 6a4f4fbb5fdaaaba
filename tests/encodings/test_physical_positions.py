"""Physical positions: normalized tables unchanged, the law spacing · k == scales · k, the reference length, and the
token positions both kinds place."""

from __future__ import annotations

import math

import pytest
import torch

from afpe.encodings import build_encoding, grid_positions
from afpe.encodings.base import physical_spacing

FOURIER_FAMILY = ("fourier", "afpe", "lfpe", "lsfpe")


def former_table(grid: tuple[int, ...], frequencies: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """The table as computed before positions had kinds: extra tokens at linspace(2, 3), the grid at
    linspace(0, 1) per axis, angles in float64, rounded to float32."""
    axes = [torch.linspace(0.0, 1.0, n) for n in grid]
    patches = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))
    extra = torch.linspace(2.0, 3.0, n_tokens).unsqueeze(1).expand(-1, len(grid))
    angles = 2 * math.pi * torch.cat([extra, patches]).double() @ frequencies.double().T
    return torch.cat([angles.sin(), angles.cos()], dim=-1).float().unsqueeze(0)


@pytest.mark.parametrize("name", FOURIER_FAMILY)
@pytest.mark.parametrize(("grid", "scales"), [((7, 7), (1.0, 0.25)), ((3, 8, 5), (0.5, 4.0, 20.0)), ((9,), (3.0,))])
def test_normalized_tables_are_bit_identical_to_the_former_ones(name, grid, scales) -> None:
    kwargs = {"scale": 2.5} if name == "fourier" else {"scales": scales}
    pe = build_encoding(name, grid, 32, n_tokens=1, seed=5, **kwargs)
    assert torch.equal(pe(), former_table(grid, pe.frequencies(), 1))
    assert torch.equal(pe(), build_encoding(name, grid, 32, n_tokens=1, seed=5, spacing=None, **kwargs)())


def afpe(spacing, scales, n_tokens: int) -> torch.nn.Module:
    return build_encoding("afpe", (5, 7, 3), 64, scales=scales, spacing=spacing, seed=9, n_tokens=n_tokens)


def rounding(pe: torch.nn.Module) -> float:
    """8 eps32 (1 + the largest angle): float32 rounding of positions and frequencies."""
    largest = 2 * math.pi * (pe.positions.abs().max() * pe.frequencies().abs().sum(dim=1).max()).item()
    return 8 * torch.finfo(torch.float32).eps * (1 + largest)


@pytest.mark.parametrize("k", [0.1, 3.0, 17.0])
@pytest.mark.parametrize("n_tokens", [0, 1])
def test_spacing_times_k_equals_scales_over_k(k, n_tokens) -> None:
    """The law: p · B is all the table reads, so multiplying the spacing by k is dividing the scales by k (and
    spacing · k with scales s is spacing with scales s · k), extra tokens included."""
    spacing, scales = (0.02, 0.05, 0.3), (2.0, 0.7, 1.5)
    stretched = [h * k for h in spacing]
    reference = afpe(spacing, scales, n_tokens)
    law = afpe(stretched, [s / k for s in scales], n_tokens)
    assert (law() - reference()).abs().max().item() <= rounding(reference)
    rescaled = afpe(spacing, [s * k for s in scales], n_tokens)
    assert (afpe(stretched, scales, n_tokens)() - rescaled()).abs().max().item() <= rounding(rescaled)
    unchanged = afpe(stretched, scales, n_tokens)
    assert (unchanged() - reference()).abs().max().item() > 100 * rounding(reference), "the spacing moves the table"


def test_physical_positions_are_index_times_spacing_and_extra_tokens_lie_beyond() -> None:
    grid, spacing = (3, 4), (0.5, 0.25)
    positions = grid_positions(grid, spacing)
    assert positions[:4].tolist() == [[0.0, 0.0], [0.0, 0.25], [0.0, 0.5], [0.0, 0.75]]
    assert positions[-1].tolist() == [1.0, 0.75]
    pe = build_encoding("afpe", grid, 16, spacing=spacing, n_tokens=1)
    assert pe.positions[0].tolist() == [2.0, 2.0]  # 2 x the grid's largest coordinate (1.0)
    assert torch.equal(pe.positions[1:], positions)


def test_physical_defaults_are_isotropic_per_unit_length() -> None:
    grid = (4, 8)
    normalized = build_encoding("afpe", grid, 16)
    physical = build_encoding("afpe", grid, 16, spacing=(0.1, 0.1))
    assert normalized.axis_scale.tolist() == [0.5, 1.0]
    assert physical.axis_scale.tolist() == [1.0, 1.0]


def test_reference_length_is_the_largest_extent_unless_given() -> None:
    # a cubic isotropic grid of n tokens spans [0, (n - 1) / n], near the normalized [0, 1]
    assert physical_spacing((6, 6, 6), (4.0, 4.0, 4.0)) == pytest.approx((1 / 6,) * 3)
    # 0.8 x 0.8 x 5 mm with 64 x 64 x 10 tokens: the field of view is 51.2 x 51.2 x 50 mm
    assert physical_spacing((64, 64, 10), (0.8, 0.8, 5.0)) == pytest.approx((0.8 / 51.2, 0.8 / 51.2, 5.0 / 51.2))
    # a fixed reference keeps the law through the whole chain: spacing x k -> spacing in reference lengths x k
    fixed = physical_spacing((64, 64, 10), (0.8, 0.8, 5.0), reference_length=100.0)
    doubled = physical_spacing((64, 64, 10), (1.6, 1.6, 10.0), reference_length=100.0)
    assert doubled == pytest.approx(tuple(2 * h for h in fixed))
    # the default reference follows the field of view: a uniform k cancels
    assert physical_spacing((64, 64, 10), (1.6, 1.6, 10.0)) == pytest.approx(
        physical_spacing((64, 64, 10), (0.8, 0.8, 5.0))
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spacing": (0.1,)}, "spacing must have one value per grid axis"),
        ({"spacing": (0.1, 0.0)}, "spacing must be finite numbers > 0"),
        ({"spacing": (0.1, float("nan"))}, "spacing must be finite numbers > 0"),
    ],
)
def test_bad_spacing_is_a_value_error_naming_it(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_encoding("afpe", (4, 4), 16, **kwargs)


def test_bad_reference_length_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="reference_length"):
        physical_spacing((4, 4), (1.0, 1.0), reference_length=0.0)
    with pytest.raises(ValueError, match="spacing"):
        physical_spacing((4, 4), (1.0, -1.0))


def test_the_similarity_page_names_the_unit() -> None:
    from afpe.encodings.plot import similarity_panels

    panels = similarity_panels("afpe", (6, 8), dim=32, scales=(1.0, 1.0), spacing=(0.8, 5.0), unit="mm")
    assert panels[0].title == "afpe, scales 1, 1 per 40 mm"  # the largest extent: 8 tokens x 5 mm
    assert panels[0].axes == ("rows (0.8 mm per token)", "cols (5 mm per token)")
    normalized = similarity_panels("afpe", (6, 8), dim=32, scales=(1.0, 1.0))
    assert normalized[0].axes == ("rows", "cols")
    assert not torch.allclose(torch.tensor(panels[0].values), torch.tensor(normalized[0].values))
