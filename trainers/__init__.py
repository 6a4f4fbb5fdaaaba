"""Training: one N-d ViT (2D, 3D, video), a registry of tasks (synthetic phantoms and real-format loaders),
and `train(config, report, checkpoint_dir)`, called once per trial by the search."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from afpe.core.lazy import lazy_exports

# MONAI 1.6 calls `torch.jit.interface` (deprecated since torch 2.14) when `monai.networks.nets` is imported, which
# any MONAI import pulls in: without this filter every segmentation trial stored and `afpe run` printed that warning.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning)

if TYPE_CHECKING:
    from afpe.trainers.loop import train
    from afpe.trainers.settings import ModelConfig, TrainConfig, TrainerSettings
    from afpe.trainers.tasks import DataError, TaskInfo, build_task, list_tasks, task_info
    from afpe.trainers.vit import ViT

__getattr__ = lazy_exports(
    __name__,
    {
        "DataError": "afpe.trainers.tasks",
        "ModelConfig": "afpe.trainers.settings",
        "TaskInfo": "afpe.trainers.tasks",
        "TrainConfig": "afpe.trainers.settings",
        "TrainerSettings": "afpe.trainers.settings",
        "ViT": "afpe.trainers.vit",
        "build_task": "afpe.trainers.tasks",
        "list_tasks": "afpe.trainers.tasks",
        "task_info": "afpe.trainers.tasks",
        "train": "afpe.trainers.loop",
    },
)

__all__ = [
    "DataError",
    "ModelConfig",
    "TaskInfo",
    "TrainConfig",
    "TrainerSettings",
    "ViT",
    "build_task",
    "list_tasks",
    "task_info",
    "train",
]
