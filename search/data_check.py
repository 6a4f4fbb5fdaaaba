"""The data check before a study's first trial: the task's dataset read once (its on-disk cache built, as
`afpe train` would), a missing or malformed data folder refused as one line naming `data_root`.

Imports only `afpe.trainers` (no Ray, no Optuna), so `afpe run` refuses bad data within seconds, before Ray
starts or the study is touched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from afpe.core.errors import UserError


class DataRootError(UserError):
    """A study's data cannot be read: one line starting `data_root:` (`afpe run`: exit 2; REST: 422)."""


def data_error_line(error: BaseException) -> str:
    """`data_root: <the task's message>`; a Ray task's error (`RayTaskError`, whose text is a traceback) gives
    its cause's message."""
    cause = getattr(error, "cause", None) or error
    return f"data_root: {cause}"


def check_data(task: str, options: dict[str, Any], data_root: str | None) -> None:
    """Build `task` and run its `prepare` here: a task that reads files decodes them into the on-disk cache
    (`AFPE_CACHE_DIR`), a generated one does nothing. DataRootError when the data root is missing, not a folder,
    or lacks or garbles a file the task reads."""
    from afpe.trainers import DataError, build_task

    try:
        build_task(task, options, data_root).prepare()
    except DataError as error:
        raise DataRootError(data_error_line(error)) from None


def checked_here(data_root: str | None, ray_address: str | None) -> bool:
    """Whether this process is the place to check the data: it sees `data_root` (or there is none to see), or
    no cluster is given (`ray_address`, else $RAY_ADDRESS), so the trials run on this host (a private Ray).
    False: the data lives on the cluster's nodes (e.g. a head that mounts no data) and is checked there."""
    if not (ray_address or os.environ.get("RAY_ADDRESS")):
        return True
    return data_root is None or Path(data_root).expanduser().is_dir()
