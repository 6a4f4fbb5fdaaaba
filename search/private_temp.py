"""Private temp folders for a local Ray. Ray makes its temp dir and every folder in it world-writable (0777
without the sticky bit: logs, sockets, a job's spec.json), so Ray gets a folder inside one that only its owner
can enter (0700, `private_ray_dir`), and a watcher removes that folder once the process that made it is gone,
a SIGKILL included (`remove_when_gone`)."""

from __future__ import annotations

import os
import subprocess
import tempfile

RAY_SUBDIR = "r"  # short: Ray's unix sockets live under it, within the 107 bytes of a socket path
# Waits while process $1 lives and folder $2 exists; then (Ray's processes end with their driver) removes $2.
REMOVE_WHEN_GONE = 'while kill -0 "$1" 2>/dev/null && [ -e "$2" ]; do sleep 1; done; sleep 5; rm -rf -- "$2"'


def private_ray_dir() -> tuple[str, str]:
    """(a fresh /tmp folder of mode 0700, the empty folder inside it to give Ray as its temp dir)."""
    folder = tempfile.mkdtemp(prefix="afpe-ray-", dir="/tmp")  # mkdtemp: mode 0700
    inner = os.path.join(folder, RAY_SUBDIR)
    os.mkdir(inner, 0o700)
    return folder, inner


def remove_when_gone(folder: str, pid: int | None = None) -> None:
    """Remove `folder` once process `pid` (default: this one) has ended, by a detached shell that also ends
    as soon as the folder is removed otherwise."""
    subprocess.Popen(
        ["/bin/sh", "-c", REMOVE_WHEN_GONE, "afpe-temp-cleanup", str(pid or os.getpid()), folder],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
