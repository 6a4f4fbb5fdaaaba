"""The priors' math (`search/priors.py`) on real task geometries: an anisotropic strided volume (the published
(1, 1, 4) protocol), physical positions (the converted scales give the very table the rule builds on normalized
positions), tied axes, an isotropic grid (rules that coincide are one prior), clipping, and the encodings and
spaces that get none; and their enqueueing into a real Optuna study (none twice, an unfinished one again)."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution

from afpe.encodings import build_encoding
from afpe.encodings.base import physical_spacing
from afpe.search import validate_spec
from afpe.search.prior_results import enqueue_priors
from afpe.search.priors import PRIOR_KEY, Priors, plan_line
from afpe.search.spec import SearchSpace
from afpe.trainers import task_info

WIDE = 0.05, 20.0  # geometric centre 1


def strided(anisotropy: list[int], low: float = WIDE[0], high: float = WIDE[1], **trainer: object) -> SearchSpace:
    """synthetic3d 16^3 strided by `anisotropy` (patch 2, shrinking with the stride), (d0, d1) tied vs d2."""
    spec = {
        "name": "strided",
        "task": "synthetic3d",
        "task_options": {"anisotropy": anisotropy, "size": 16, "patch": 2},
        "axes": [
            {"name": "xy", "grid_axes": [0, 1], "low": low, "high": high},
            {"name": "z", "grid_axes": [2], "low": low, "high": high},
        ],
        "trainer": {"model": {"dim": 48, "depth": 1, "heads": 2}, **trainer},
    }
    return validate_spec(spec).search_space()


def by_name(space: SearchSpace) -> dict[str, dict[str, float]]:
    return {name: prior.params for prior in space.priors for name in prior.names}


def test_the_published_anisotropic_volume_gives_the_authors_ratios_and_an_isotropic_kernel_in_voxels() -> None:
    space = strided([1, 1, 4])
    info = task_info("synthetic3d", {"anisotropy": [1, 1, 4], "size": 16, "patch": 2})
    assert info.patch_grid == (8, 8, 4)  # the token grid shrinks along the strided axis, as published
    priors = by_name(space)
    assert [p.names for p in space.priors] == [("extent",), ("grid/max",), ("0.5/anisotropy",)]
    # the reference's figures for (1, 1, 4): grid / max -> ratio 0.5, 0.5 / a -> 0.25 (at the published levels)
    assert priors["grid/max"] == {"s_xy": 1.0, "s_z": 0.5}
    assert priors["0.5/anisotropy"] == {"s_xy": 0.5, "s_z": 0.125}
    # extent: the kernel exp(-2 pi^2 sum (s_j / E_j)^2 dx_j^2) decays alike per voxel on every axis
    extent = [(n - 1) * h for n, h in zip(info.patch_grid, info.spacing, strict=True)]
    decay = priors["extent"]["s_xy"] / extent[0], priors["extent"]["s_z"] / extent[2]
    assert decay[0] == pytest.approx(decay[1], rel=1e-5)
    assert math.sqrt(priors["extent"]["s_xy"] * priors["extent"]["s_z"]) == pytest.approx(1.0, rel=1e-5)
    assert space.priors_note is None


def test_physical_positions_carry_each_rule_to_the_same_table() -> None:
    """With physical positions a prior's scales build the grid table its rule builds on linspace positions; the
    extent rule becomes equal scales (one unit on every axis already)."""
    options = {"anisotropy": [1, 1, 4], "size": 16, "patch": 2}
    space = strided([1, 1, 4], positions="physical")
    info = task_info("synthetic3d", options)
    grid, voxel = info.patch_grid, [h / p for h, p in zip(info.spacing, info.patch_size, strict=True)]
    normalized = {  # each rule's scales on linspace positions, by its definition
        "grid/max": [n / max(grid) for n in grid],
        "0.5/anisotropy": [0.5 * min(voxel) / v for v in voxel],
    }
    spacing = physical_spacing(grid, info.spacing)
    for name, params in by_name(space).items():
        scales = space.scales_for(params)
        if name == "extent":
            assert scales[0] == scales[1] == pytest.approx(scales[2], rel=1e-5)
            continue
        on_linspace = build_encoding("afpe", grid, 48, scales=normalized[name], seed=3)()
        physical = build_encoding("afpe", grid, 48, scales=scales, seed=3, spacing=spacing)()
        assert torch.allclose(on_linspace, physical, atol=1e-4), name


def test_a_tied_axis_takes_the_geometric_mean_of_its_grid_axes() -> None:
    space = strided([1, 2, 4])
    info = task_info("synthetic3d", {"anisotropy": [1, 2, 4], "size": 16, "patch": 2})
    voxel = [h / p for h, p in zip(info.spacing, info.patch_size, strict=True)]
    rule = [0.5 * min(voxel) / v for v in voxel]
    assert by_name(space)["0.5/anisotropy"]["s_xy"] == pytest.approx(math.sqrt(rule[0] * rule[1]), rel=1e-5)
    assert by_name(space)["0.5/anisotropy"]["s_z"] == pytest.approx(rule[2], rel=1e-5)


def test_rules_that_coincide_are_one_prior_with_all_their_names() -> None:
    space = strided([1, 1, 1])  # an isotropic 8^3 grid: extent centred at 1 is grid / max
    assert [(p.names, p.params) for p in space.priors] == [
        (("extent", "grid/max"), {"s_xy": 1.0, "s_z": 1.0}),
        (("0.5/anisotropy",), {"s_xy": 0.5, "s_z": 0.5}),
    ]
    assert [p.label for p in space.priors] == ["extent = grid/max", "0.5/anisotropy"]


def test_priors_outside_the_searched_range_are_clipped_and_named_so() -> None:
    space = strided([1, 1, 4], low=0.3, high=0.6)
    for prior in space.priors:
        assert all(0.3 <= value <= 0.6 for value in prior.params.values())
    clipped = {name: prior.clipped for prior in space.priors for name in prior.names}
    assert clipped["grid/max"] == ("s_xy",)  # (1, 0.5): 1 -> 0.6, 0.5 inside
    assert clipped["0.5/anisotropy"] == ("s_z",)  # 0.125 -> 0.3; s_xy 0.5 inside


def test_no_priors_without_per_axis_scales_or_a_ratio_and_no_length_rules_across_units() -> None:
    fourier = SearchSpace.from_spec(
        {
            "task": "synthetic3d",
            "encoding": "fourier",
            "axes": [{"name": "all", "grid_axes": [0, 1, 2], "low": 0.1, "high": 10}],
        }
    )
    assert fourier.priors == () and "per-axis" in fourier.priors_note
    one_axis = SearchSpace.from_spec(
        {"task": "synthetic3d", "axes": [{"name": "z", "grid_axes": [2], "low": 0.1, "high": 10}]}
    )
    assert one_axis.priors == () and "one searched axis" in one_axis.priors_note
    unknown = SearchSpace.from_spec(
        {"task": "elsewhere", "axes": [{"name": "a", "grid_axes": [0], "low": 1, "high": 2}]}
    )
    assert unknown.priors == ()
    video = SearchSpace.from_spec(
        {
            "task": "synthetic_video",
            "axes": [
                {"name": "t", "grid_axes": [0], "low": 0.1, "high": 10},
                {"name": "xy", "grid_axes": [1, 2], "low": 0.1, "high": 10},
            ],
        }
    )
    assert [p.names for p in video.priors] == [("grid/max",)]
    assert "units differ (frame, pixel, pixel)" in video.priors_note
    assert plan_line(True, Priors(fourier.priors, fourier.priors_note)).startswith("priors: none: ")
    assert plan_line(False, Priors(video.priors, None)) == "priors: off (the spec's `prior` is false)"


def test_priors_are_enqueued_once_and_an_unfinished_one_again() -> None:
    space = strided([1, 1, 4])
    study = optuna.create_study(direction="minimize")
    assert enqueue_priors(study, space.priors, count=2) == list(space.priors[:2])  # within the trials to run
    assert enqueue_priors(study, space.priors, count=5) == [space.priors[2]]  # the waiting ones are not doubled
    assert enqueue_priors(study, space.priors, count=5) == []
    distributions = {axis.param: FloatDistribution(axis.low, axis.high, log=True) for axis in space.axes}
    asked = [study.ask(distributions) for _ in space.priors]
    assert [trial.params for trial in asked] == [prior.params for prior in space.priors]
    assert [trial.user_attrs[PRIOR_KEY] for trial in asked] == [list(prior.names) for prior in space.priors]
    study.tell(asked[0], 0.5)
    study.tell(asked[1], 0.4)
    study.tell(asked[2], state=optuna.trial.TrialState.FAIL)  # e.g. a dead driver's trial, failed on resume
    assert enqueue_priors(study, space.priors, count=5) == [space.priors[2]]
