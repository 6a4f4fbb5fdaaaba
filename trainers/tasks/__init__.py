"""Tasks: one module per task, each registered with `@register_task` (see `registry.py`)."""

from afpe.trainers.tasks.base import DataError, Task, TaskInfo
from afpe.trainers.tasks.registry import TASKS, build_task, list_tasks, register_task, task_info

__all__ = ["TASKS", "DataError", "Task", "TaskInfo", "build_task", "list_tasks", "register_task", "task_info"]
