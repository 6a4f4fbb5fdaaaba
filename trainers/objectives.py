"""What a task predicts: the loss on model outputs and the validation metrics (scikit-learn; MONAI for Dice),
with directions.

Every objective also reports `val_loss` (its training loss on the validation set, minimised).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch
from torch.nn import functional as F

Direction = str  # "maximize" | "minimize"


def _metrics() -> ModuleType:
    """scikit-learn's metrics, imported on first use (~1.5 s: commands that only validate a spec skip it)."""
    from sklearn import metrics

    return metrics


class Objective(ABC):
    n_outputs: int
    metrics: dict[str, Direction]
    default_metric: str
    #: The pooling a dense objective needs (`ModelConfig.pool`): "tokens" = `n_outputs` values per patch token,
    #: "voxels" = `n_outputs` channels per input voxel (the ViT's segmentation decoder); None = one per input.
    dense: str | None = None

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """The metrics other than `val_loss` on the whole validation set (float32 CPU tensors)."""

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {**self.scores(outputs, targets), "val_loss": float(self.loss(outputs, targets))}

    def scorer(self) -> Scorer:
        """What the validation pass feeds batch by batch (`Scorer.add`, then `Scorer.result`)."""
        return Scorer(self)


class Scorer:
    """Keeps every batch's outputs and evaluates the whole set at the end (AUROC and r2 need every sample)."""

    def __init__(self, objective: Objective) -> None:
        self.objective, self.outputs, self.targets = objective, [], []

    def add(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.outputs.append(outputs)
        self.targets.append(targets)

    def result(self) -> dict[str, float]:
        return self.objective.evaluate(torch.cat(self.outputs), torch.cat(self.targets))


class Classification(Objective):
    """Single-label classes: cross-entropy; `accuracy`, `auroc` (binary, or macro one-vs-rest)."""

    metrics = {"accuracy": "maximize", "auroc": "maximize", "val_loss": "minimize"}
    default_metric = "auroc"

    def __init__(self, n_classes: int) -> None:
        self.n_outputs = n_classes

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets.long())

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        y = targets.long().numpy()
        probs = outputs.softmax(dim=1).numpy()
        return {"accuracy": float(_metrics().accuracy_score(y, probs.argmax(1))), "auroc": _class_auroc(y, probs)}


class MultiLabel(Objective):
    """Independent binary labels: BCE with logits; macro `auroc` and `auprc` (average precision)."""

    metrics = {"auroc": "maximize", "auprc": "maximize", "val_loss": "minimize"}
    default_metric = "auprc"

    def __init__(self, n_labels: int) -> None:
        self.n_outputs = n_labels

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs, targets.float())

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        y, probs = targets.numpy(), outputs.sigmoid().numpy()
        # Labels with one value only in this split have no AUROC/AP; the macro average skips them.
        both = (y.min(0) == 0) & (y.max(0) == 1)
        if not both.any():
            return {"auroc": math.nan, "auprc": math.nan}
        return {
            "auroc": float(_metrics().roc_auc_score(y[:, both], probs[:, both], average="macro")),
            "auprc": float(_metrics().average_precision_score(y[:, both], probs[:, both], average="macro")),
        }


class Regression(Objective):
    """`n_outputs` real targets in their own units (targets (n,) for one, (n, n_outputs) for several); the model
    predicts target / `target_scale` (MSE on that); `r2` (averaged over outputs), `mae`, `rmse` in the target's
    units."""

    metrics = {"r2": "maximize", "mae": "minimize", "rmse": "minimize", "val_loss": "minimize"}
    default_metric = "r2"

    def __init__(self, target_scale: float = 1.0, n_outputs: int = 1) -> None:
        self.target_scale, self.n_outputs = target_scale, n_outputs

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs.reshape(targets.shape), targets.float() / self.target_scale)

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        y, pred = targets.numpy(), outputs.reshape(targets.shape).numpy() * self.target_scale
        return {
            "r2": float(_metrics().r2_score(y, pred)) if len(y) > 1 else math.nan,
            "mae": float(_metrics().mean_absolute_error(y, pred)),
            "rmse": float(_metrics().root_mean_squared_error(y, pred)),
        }


class TokenRegression(Objective):
    """One real target per patch token, targets (n, n_tokens); a NaN target is not scored (a token outside the
    split). MSE over the scored entries; `r2` = 1 - MSE / Var over all scored entries pooled (not per token:
    a token's target may be the same in every sample), `mae`, `rmse`."""

    metrics = {"r2": "maximize", "mae": "minimize", "rmse": "minimize", "val_loss": "minimize"}
    default_metric = "r2"
    n_outputs = 1
    dense = "tokens"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scored = torch.isfinite(targets)
        return F.mse_loss(outputs.reshape(targets.shape)[scored], targets[scored].float())

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        scored = torch.isfinite(targets)
        y, pred = targets[scored].double(), outputs.reshape(targets.shape)[scored].double()
        mse = float(((pred - y) ** 2).mean())
        variance = float(y.var(unbiased=False)) if len(y) > 1 else math.nan
        return {
            "r2": 1.0 - mse / variance if variance > 0 else math.nan,
            "mae": float((pred - y).abs().mean()),
            "rmse": math.sqrt(mse),
        }


class Segmentation(Objective):
    """Voxel labels 0..C-1 (0 the background): outputs (n, C, *spatial) logits, targets (n, *spatial) int.
    Loss: MONAI's `DiceCELoss` (soft Dice over all C classes + cross-entropy, softmax, one-hot targets). Metrics:
    `dice_<class>` = MONAI's `DiceMetric` of the argmax prediction per foreground class, averaged over the samples
    whose label has that class (an absent class is not scored: NaN, skipped); `dice` = the mean of the foreground
    classes' values (maximised, the default), `val_loss`. Class names are lower-cased into metric names."""

    default_metric = "dice"
    dense = "voxels"

    def __init__(self, class_names: Sequence[str]) -> None:
        if len(class_names) < 2:
            raise ValueError(f"segmentation needs the background and at least one class, got {list(class_names)}")
        self.class_names = tuple(class_names)
        self.n_outputs = len(class_names)
        foreground = [f"dice_{name.lower()}" for name in self.class_names[1:]]
        self.metrics = {"dice": "maximize", **dict.fromkeys(foreground, "maximize"), "val_loss": "minimize"}
        self._loss: torch.nn.Module | None = None

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self._loss is None:  # MONAI imported on first use, as scikit-learn is
            from monai.losses import DiceCELoss

            self._loss = DiceCELoss(to_onehot_y=True, softmax=True)
        return self._loss(outputs, targets.long().unsqueeze(1))

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        scorer = self.scorer()
        scorer.add(outputs, targets)
        return {k: v for k, v in scorer.result().items() if k != "val_loss"}

    def scorer(self) -> SegmentationScorer:
        return SegmentationScorer(self)


class SegmentationScorer(Scorer):
    """Streams: keeps no logits (a validation set of volumes would not fit), only MONAI's `DiceMetric` buffer of
    per-sample Dice values and the loss summed per sample. Every sample has the same voxel count, so the mean of
    the per-batch `DiceCELoss` weighted by batch size is the whole set's."""

    def __init__(self, objective: Segmentation) -> None:
        from monai.metrics import DiceMetric

        super().__init__(objective)
        self.metric = DiceMetric(
            include_background=False, reduction="mean_batch", get_not_nans=True, num_classes=objective.n_outputs
        )
        self.loss_sum, self.count = 0.0, 0

    def add(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.metric(outputs.argmax(1, keepdim=True), targets.long().unsqueeze(1))
        self.loss_sum += float(self.objective.loss(outputs, targets)) * len(outputs)
        self.count += len(outputs)

    def result(self) -> dict[str, float]:
        means, counts = self.metric.aggregate()  # a class no sample has: mean 0 over 0 samples -> NaN
        per_class = [float(mean) if count else math.nan for mean, count in zip(means, counts, strict=True)]
        names = self.objective.class_names[1:]
        scores = {f"dice_{name.lower()}": value for name, value in zip(names, per_class, strict=True)}
        present = [value for value in per_class if not math.isnan(value)]
        dice = sum(present) / len(present) if present else math.nan
        return {"dice": dice, **scores, "val_loss": self.loss_sum / max(self.count, 1)}


def _class_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    """Binary AUROC, or macro one-vs-rest over the classes present in `y` (probabilities renormalised)."""
    present = np.unique(y)
    if len(present) < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(_metrics().roc_auc_score(y, probs[:, 1]))
    if len(present) == 2:
        return float(_metrics().roc_auc_score(y == present[1], probs[:, present[1]]))
    sub = probs[:, present] / probs[:, present].sum(1, keepdims=True)
    return float(_metrics().roc_auc_score(y, sub, multi_class="ovr", average="macro", labels=present))
