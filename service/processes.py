"""Programs the service starts (Ray head and worker nodes, `afpe serve`, job entrypoints) come from the running
interpreter's environment, never from whatever PATH holds: under systemd, cron, pipx or a container ENTRYPOINT
the venv's bin folder is usually not on PATH, and a bare `ray` is then "No such file or directory"."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def interpreter_bin() -> Path:
    """The folder of the running interpreter (a venv's `bin/`), where its console scripts live."""
    return Path(sys.executable).parent


def executable(name: str) -> str:
    """`name` (e.g. `ray`, `afpe`) from the interpreter's folder, else from PATH; FileNotFoundError if neither."""
    found = shutil.which(name, path=str(interpreter_bin())) or shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: command not found next to {sys.executable} or on PATH")
    return found


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child, with the interpreter's folder first on PATH (so the child's own
    children, such as a Ray job's `afpe run` entrypoint, resolve the same installation) and no RAY_ADDRESS (a
    started node joins no other cluster), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["PATH"] = os.pathsep.join([str(interpreter_bin()), *filter(None, [env.get("PATH")])])
    return {**env, **(extra or {})}
