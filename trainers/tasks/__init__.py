"""The one registry of tasks: one module per task, `build_task` as the factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from afpe.trainers.tasks.base import DataError, Task, TaskInfo
from afpe.trainers.tasks.chestx import ChestX
from afpe.trainers.tasks.echonet import EchoNet
from afpe.trainers.tasks.field3d import Field3D
from afpe.trainers.tasks.medmnist3d import MedMNIST3D
from afpe.trainers.tasks.synthetic2d import Synthetic2D
from afpe.trainers.tasks.synthetic3d import Synthetic3D
from afpe.trainers.tasks.synthetic_video import SyntheticVideo

TASKS: dict[str, type[Task]] = {
    task.name: task for task in (Synthetic2D, Synthetic3D, SyntheticVideo, Field3D, MedMNIST3D, ChestX, EchoNet)
}


def list_tasks() -> list[str]:
    return list(TASKS)


def build_task(name: str, options: Mapping[str, Any] | None = None, data_root: str | Path | None = None) -> Task:
    """The task `name` with validated options; no data is read until `datasets()`."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name](options, data_root)


def task_info(name: str, options: Mapping[str, Any] | None = None) -> TaskInfo:
    """Axes, metrics and geometry of a task (default patch size), without loading data."""
    return build_task(name, options).info()


__all__ = ["TASKS", "DataError", "Task", "TaskInfo", "build_task", "list_tasks", "task_info"]
