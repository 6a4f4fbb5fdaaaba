"""`afpe` is MONAI's Fourier position embedding (`build_fourier_position_embedding`, `PatchEmbeddingBlock(
pos_embed_type="fourier")`) for the same seed, on 2D and 3D grids, anisotropic scales and non-cubic grids: the same
draw bit for bit, the same table up to float32 rounding of the angles (afpe.encodings.upstream says what equals what).
"""

from __future__ import annotations

import math

import pytest
import torch
from monai.networks.blocks import PatchEmbeddingBlock
from monai.networks.blocks.pos_embed_utils import build_fourier_position_embedding

from afpe.encodings import build_encoding
from afpe.encodings.upstream import monai_fourier_arguments, monai_scales, rounding_bound

CASES = [  # grid, per-axis scales, global scale, dim, seed
    ((4, 4), (1.0, 1.0), 1.0, 16, 0),
    ((6, 9), (0.3, 7.5), 1.0, 64, 3),
    ((16, 5), (2.0, 0.5), 3.0, 34, 7),
    ((3, 5, 7), (0.05, 2.0, 20.0), 1.0, 96, 11),
    ((2, 16, 16), (0.7, 3.1, 3.1), 1.0, 128, 42),
    ((8, 8, 1), (0.4, 1.6, 1.0), 1.0, 64, 0),
    ((8, 8, 8), (20.0, 20.0, 20.0), 1.0, 96, 0),
]


def tolerance(pe: torch.nn.Module) -> float:
    return rounding_bound(pe.frequencies())


def seeded_monai(seed: int, **arguments) -> torch.Tensor:
    torch.manual_seed(seed)
    return build_fourier_position_embedding(**arguments)


@pytest.mark.parametrize(("grid", "scales", "scale", "dim", "seed"), CASES)
def test_afpe_equals_monais_builder_for_the_same_seed(grid, scales, scale, dim, seed) -> None:
    pe = build_encoding("afpe", grid, dim, scales=scales, scale=scale, seed=seed, n_tokens=1)
    torch.manual_seed(seed)
    assert torch.equal(torch.randn(dim // 2, len(grid)), pe.gaussian), "MONAI's draw: randn on the seeded global RNG"

    theirs = seeded_monai(
        seed, grid_size=list(grid), embed_dim=dim, spatial_dims=len(grid), scales=monai_scales(scales, scale)
    )
    patches = pe()[:, 1:]  # MONAI encodes the patch tokens only
    assert theirs.shape == patches.shape == (1, math.prod(grid), dim)
    assert (patches - theirs).abs().max().item() <= tolerance(pe)
    exported = seeded_monai(seed, **monai_fourier_arguments(grid, dim, scales, scale))
    assert torch.equal(exported, theirs)


def test_the_tolerance_still_tells_axis_order_seed_and_halves_apart() -> None:
    grid, scales, dim, seed = (6, 9, 4), (0.3, 7.5, 2.0), 64, 3
    patches = build_encoding("afpe", grid, dim, scales=scales, seed=seed)()
    limit = tolerance(build_encoding("afpe", grid, dim, scales=scales, seed=seed))
    arguments = {"grid_size": list(grid), "embed_dim": dim, "spatial_dims": 3}
    wrong = {
        "axes reversed": seeded_monai(seed, **{**arguments, "scales": list(scales[::-1])}),
        "another seed": seeded_monai(seed + 1, **arguments, scales=list(scales)),
        "cos before sin": seeded_monai(seed, **arguments, scales=list(scales)).roll(dim // 2, dims=-1),
    }
    for why, table in wrong.items():
        assert (patches - table).abs().max().item() > 100 * limit, why


def test_a_patch_embedding_block_with_the_exported_arguments_has_afpes_embedding() -> None:
    img_size, patch_size, dim, seed, scales = (40, 36, 12), (4, 6, 3), 48, 5, (0.2, 4.0, 1.3)
    grid = tuple(i // p for i, p in zip(img_size, patch_size, strict=True))
    pe = build_encoding("afpe", grid, dim, scales=scales, seed=seed)
    arguments = monai_fourier_arguments(grid, dim, scales)

    torch.manual_seed(seed)
    block = PatchEmbeddingBlock(
        in_channels=1,
        img_size=img_size,
        patch_size=patch_size,
        hidden_size=dim,
        num_heads=4,
        pos_embed_type="fourier",
        spatial_dims=arguments["spatial_dims"],
        pos_embed_kwargs={"scales": arguments["scales"]},
    )
    # The block's conv takes from the global RNG before the draw: seeding before the block gives another draw.
    assert (block.position_embeddings - pe()).abs().max().item() > 1.0
    block.position_embeddings = seeded_monai(seed, **arguments)
    assert (block.position_embeddings - pe()).abs().max().item() <= tolerance(pe)

    x = torch.randn(2, 1, *img_size)
    expected = block.patch_embeddings(x).flatten(2).transpose(1, 2) + pe()
    assert (block(x) - expected).abs().max().item() <= tolerance(pe)


PHYSICAL_CASES = [  # grid, token spacing in reference lengths, scales, dim, seed
    ((4, 4), (0.25, 0.25), (1.0, 1.0), 16, 0),
    ((6, 9), (0.02, 0.11), (3.0, 0.5), 64, 3),
    ((8, 8, 2), (1 / 51.2 * 0.8, 1 / 51.2 * 0.8, 5 / 51.2), (0.4, 1.6, 2.0), 96, 11),
    ((5, 7, 1), (0.3, 0.7, 2.0), (12.0, 0.05, 1.0), 64, 42),
]


@pytest.mark.parametrize(("grid", "spacing", "scales", "dim", "seed"), PHYSICAL_CASES)
def test_physical_scales_converted_give_monais_table(grid, spacing, scales, dim, seed) -> None:
    """MONAI's q_j = i / (n_j - 1), ours p_j = i · h_j = h_j (n_j - 1) q_j: MONAI's scale s_j h_j (n_j - 1)."""
    pe = build_encoding("afpe", grid, dim, scales=scales, seed=seed, n_tokens=1, spacing=spacing)
    converted = monai_scales(scales, 1.0, "physical", grid, spacing)
    assert converted == pytest.approx([s * h * (n - 1) for s, h, n in zip(scales, spacing, grid, strict=True)])
    theirs = seeded_monai(seed, **monai_fourier_arguments(grid, dim, scales, positions="physical", spacing=spacing))
    limit = rounding_bound(pe.gaussian * torch.tensor(converted))  # MONAI's frequencies, positions in [0, 1]
    assert (pe()[:, 1:] - theirs).abs().max().item() <= limit
    unconverted = seeded_monai(seed, grid_size=list(grid), embed_dim=dim, spatial_dims=len(grid), scales=list(scales))
    assert (pe()[:, 1:] - unconverted).abs().max().item() > 100 * limit, "physical scales need the conversion"


def test_monai_scales_names_what_a_conversion_lacks() -> None:
    assert monai_scales([1.0, 2.0], 3.0, "normalized") == [3.0, 6.0]
    with pytest.raises(ValueError, match="known: normalized, physical"):
        monai_scales([1.0], positions="normalised")
    with pytest.raises(ValueError, match="physical positions need the grid and the token spacing"):
        monai_scales([1.0, 2.0], positions="physical", grid=[4, 4])
