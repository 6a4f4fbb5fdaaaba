"""The Fourier-feature tables under bf16 autocast (CPU autocast has CUDA's cast rules for matmul): the angles
reach thousands of radians at scale 50, so they must not be rounded to bf16 before sin/cos."""

from __future__ import annotations

import math

import pytest
import torch

from afpe.encodings import build_encoding

SCALES = (0.01, 0.1, 1.0, 10.0, 20.0, 50.0)
GRIDS = ((4, 4, 4), (8, 14, 14))  # the quickstart's token grid, and a video-sized one


def reference_table(pe: torch.nn.Module) -> torch.Tensor:
    """γ(p) = [sin(2π p Bᵀ) ‖ cos(2π p Bᵀ)] from the module's positions and draw, all in float64."""
    angles = 2 * math.pi * pe.positions.double() @ pe.frequencies().detach().double().T
    return torch.cat([angles.sin(), angles.cos()], dim=-1).unsqueeze(0)


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("name", ["fourier", "afpe", "lfpe", "lsfpe"])
def test_table_under_bf16_autocast_matches_float64(name: str, grid: tuple[int, ...]) -> None:
    for scale in SCALES:
        kwargs = {"scale": scale} if name == "fourier" else {"scales": (scale,) * len(grid)}
        pe = build_encoding(name, grid, 48, n_tokens=1, seed=0, **kwargs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            table = pe()
        assert table.dtype == torch.float32
        error = (table.double() - reference_table(pe)).abs().max().item()
        assert error < 1e-3, f"{name} at scale {scale}: max error {error:.2e}"


def test_learned_tables_keep_their_gradient_under_autocast() -> None:
    pe = build_encoding("lsfpe", (4, 4, 4), 48, scales=(20.0, 20.0, 5.0), seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pe().square().sum().backward()
    assert pe.axis_scale.grad is not None and torch.isfinite(pe.axis_scale.grad).all()
    assert pe.axis_scale.grad.abs().sum() > 0


def test_a_loaded_draw_replaces_the_cached_table() -> None:
    first = build_encoding("afpe", (4, 4, 4), 48, scales=(2.0, 2.0, 0.5), seed=0)
    second = build_encoding("afpe", (4, 4, 4), 48, scales=(2.0, 2.0, 0.5), seed=1)
    assert not torch.equal(first(), second())
    second.load_state_dict(first.state_dict())
    assert torch.equal(first(), second())
    assert torch.allclose(second().double(), reference_table(second), atol=1e-6)
