"""The segmentation objective (MONAI Dice + CE, DiceMetric) and the ViT's UNETR-style decoder (pool voxels)."""

from __future__ import annotations

import math

import pytest
import torch

from afpe.trainers.decoder import up_steps
from afpe.trainers.objectives import Segmentation
from afpe.trainers.settings import ModelConfig
from afpe.trainers.tasks.base import TaskInfo
from afpe.trainers.vit import ViT


def logits_of(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Confident logits whose argmax is `labels` (n, *spatial) -> (n, C, *spatial)."""
    return torch.nn.functional.one_hot(labels, n_classes).movedim(-1, 1).float() * 20.0


def test_dice_per_class_is_the_overlap_and_absent_classes_are_not_scored() -> None:
    objective = Segmentation(["background", "Edema", "ET"])
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1  # 4 voxels of class 1 in sample 0; class 2 nowhere
    target[1, 0, :] = 1  # 4 voxels of class 1 in sample 1
    prediction = target.clone()
    prediction[0, 0, 0] = 0  # 3 of 4 found, none extra: Dice 2*3/(3+4)
    prediction[1, 1, 0] = 2  # class 2 predicted where the label has none
    scores = objective.evaluate(logits_of(prediction, 3), target)
    assert objective.metrics == {
        "dice": "maximize",
        "dice_edema": "maximize",
        "dice_et": "maximize",
        "val_loss": "minimize",
    }
    assert scores["dice_edema"] == pytest.approx((6 / 7 + 1.0) / 2)
    assert math.isnan(scores["dice_et"])  # no sample has the class: not scored
    assert scores["dice"] == pytest.approx(scores["dice_edema"])
    assert scores["val_loss"] > 0


def test_the_loss_is_lower_for_the_right_labels() -> None:
    objective = Segmentation(["background", "tumour"])
    target = (torch.rand(3, 8, 8, 4) > 0.7).long()
    assert objective.loss(logits_of(target, 2), target) < objective.loss(logits_of(1 - target, 2), target)
    assert objective.evaluate(logits_of(target, 2), target)["dice"] == pytest.approx(1.0)


def test_a_segmentation_needs_a_foreground_class() -> None:
    with pytest.raises(ValueError, match="at least one class"):
        Segmentation(["background"])


@pytest.mark.parametrize(
    ("patch", "steps", "stride"),
    [((16, 16, 16), 4, (2, 2, 2)), ((16, 16, 4), 2, (4, 4, 2)), ((8, 8, 2), 1, (8, 8, 2)), ((4, 1), 2, (2, 1))],
)
def test_up_steps_undo_the_patch_in_equal_steps(patch: tuple[int, ...], steps: int, stride: tuple[int, ...]) -> None:
    assert up_steps(patch) == (steps, stride)
    assert all(u**steps == p for u, p in zip(stride, patch, strict=True))


@pytest.mark.parametrize("patch", [(6, 6, 2), (1, 1, 1)])
def test_the_decoder_refuses_patches_it_cannot_undo(patch: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="model.patch_size"):
        ViT(in_channels=1, spatial=(12, 12, 4), patch_size=patch, n_outputs=2, encoding="afpe", pool="voxels")


@pytest.mark.parametrize(
    ("spatial", "patch", "cls_token"),
    [((16, 16, 8), (4, 4, 2), True), ((32, 32, 8), (16, 16, 4), False), ((16, 8), (4, 2), True)],
)
def test_voxel_pooling_predicts_every_voxel(spatial: tuple[int, ...], patch: tuple[int, ...], cls_token: bool) -> None:
    model = ViT(
        in_channels=2,
        spatial=spatial,
        patch_size=patch,
        n_outputs=3,
        encoding="afpe",
        scales=[1.0] * len(spatial),
        dim=32,
        depth=3,
        heads=4,
        cls_token=cls_token,
        pool="voxels",
        decoder_features=8,
    )
    assert model(torch.randn(2, 2, *spatial)).shape == (2, 3, *spatial)


def test_a_patch_that_does_not_divide_the_input_is_refused() -> None:
    with pytest.raises(ValueError, match="must divide the input"):
        ViT(in_channels=1, spatial=(18, 16, 8), patch_size=(4, 4, 2), n_outputs=2, encoding="afpe", pool="voxels")


def test_the_model_learns_to_segment_a_position_defined_region() -> None:
    """Noise in, the left half of every volume labelled: only the position tells the class, so the model must
    read it from the encoding (the input carries none)."""
    torch.manual_seed(0)
    spatial, objective = (16, 16, 8), Segmentation(["background", "left"])
    model = ViT(
        in_channels=1,
        spatial=spatial,
        patch_size=(4, 4, 2),
        n_outputs=2,
        encoding="afpe",
        scales=[1.0, 1.0, 1.0],
        dim=32,
        pool="voxels",
        decoder_features=8,
    )
    target = torch.zeros(4, *spatial, dtype=torch.long)
    target[:, :8] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = objective.loss(model(torch.randn(4, 1, *spatial)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        scores = objective.evaluate(model(torch.randn(4, 1, *spatial)), target)
    assert scores["dice"] > 0.9


@pytest.mark.parametrize(("pool", "error"), [("cls", "set pool to 'voxels'"), ("tokens", "set pool to 'voxels'")])
def test_a_segmentation_task_takes_voxel_pooling_only(pool: str, error: str) -> None:
    info = TaskInfo("seg", 3, ("d0", "d1", "d2"), {}, "dice", (1, 8, 8, 8), (4, 4, 4), (2, 2, 2), 2, dense="voxels")
    assert info.resolve_pool(None) == "voxels"
    with pytest.raises(ValueError, match=error):
        info.resolve_pool(pool)
    pooled = TaskInfo("cls", 3, ("d0", "d1", "d2"), {}, "auroc", (1, 8, 8, 8), (4, 4, 4), (2, 2, 2), 2)
    with pytest.raises(ValueError, match="model.pool"):
        pooled.resolve_pool("voxels")
    assert ModelConfig(pool="voxels", decoder_features=8).decoder_features == 8


def test_the_streaming_scorer_equals_the_whole_set_evaluation() -> None:
    """The validation pass feeds batches of different sizes; no logits are kept, the figures are the same."""
    objective, generator = Segmentation(["background", "a", "b"]), torch.Generator().manual_seed(0)
    outputs, targets = torch.randn(5, 3, 6, 6, 4, generator=generator), torch.randint(0, 3, (5, 6, 6, 4))
    scorer = objective.scorer()
    scorer.add(outputs[:3], targets[:3])
    scorer.add(outputs[3:], targets[3:])
    streamed, whole = scorer.result(), objective.evaluate(outputs, targets)
    assert streamed.keys() == whole.keys() == objective.metrics.keys()
    assert streamed == pytest.approx(whole, rel=1e-5)
