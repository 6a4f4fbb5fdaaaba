"""Issue 30 row 10: the private Ray of `afpe run` keeps its temp dir (world-writable, as Ray makes it: logs,
sockets) inside a folder only its owner enters (0700), and that folder is removed after a SIGKILL of the run."""

from __future__ import annotations

import glob
import os
import stat
import subprocess
import time
from pathlib import Path


def test_the_private_ray_dir_is_the_owners_only_and_goes_with_a_killed_run(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'run.db'}"
    command = [afpe_executable, "run", "quickstart", "--storage", storage, "--set", "n_trials=50"]
    run = subprocess.Popen(command, env=user_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (sessions := glob.glob(f"/tmp/afpe-ray-*/*/session_*_{run.pid}")):
            assert run.poll() is None and time.monotonic() < deadline, "no Ray session of the run appeared"
            time.sleep(0.5)
        session = Path(sessions[0])
        folder = session.parents[1]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
        assert folder.stat().st_uid == os.getuid()
        time.sleep(5)  # Ray is up: its workers write logs and sockets under the session
    finally:
        run.kill()
        run.wait()
    killed = time.monotonic()
    while folder.exists() and time.monotonic() < killed + 90:
        time.sleep(1)
    print(f"the private Ray's folder removed {time.monotonic() - killed:.1f} s after the SIGKILL")
    assert not folder.exists()
