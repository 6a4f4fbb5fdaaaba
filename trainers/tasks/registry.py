"""The registry of tasks (the convention of `afpe.core.registry`): a task class carries its `name` and the
`register_task` decorator in its own module of this package; `build_task` is the factory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from afpe.core.registry import Registry, import_submodules
from afpe.trainers.tasks.base import Task, TaskInfo

TASKS: Registry[type[Task]] = Registry("task")
register_task = TASKS.register


def list_tasks() -> list[str]:
    """Names of the registered tasks, in registration order."""
    _load_builtin()
    return TASKS.names()


def build_task(name: str, options: Mapping[str, Any] | None = None, data_root: str | Path | None = None) -> Task:
    """The task `name` with validated options; no data is read until `datasets()`. ValueError for an unknown
    name (listing the valid ones) or bad options."""
    _load_builtin()
    return TASKS.get(name)(options, data_root)


def task_info(name: str, options: Mapping[str, Any] | None = None) -> TaskInfo:
    """Axes, metrics and geometry of a task (default patch size), without loading data."""
    return build_task(name, options).info()


def _load_builtin() -> None:
    import_submodules("afpe.trainers.tasks", "@register_task")
