"""Training: one N-d ViT (2D, 3D, video), a registry of tasks (synthetic phantoms and real-format loaders),
and `train(config, report, checkpoint_dir)`, called once per trial by the search."""

from afpe.trainers.loop import train
from afpe.trainers.settings import ModelConfig, TrainConfig, TrainerSettings
from afpe.trainers.tasks import DataError, TaskInfo, build_task, list_tasks, task_info
from afpe.trainers.vit import ViT

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
