"""scripts/compose-smoke end to end: docker-compose.yml's CPU profile built and brought up under a real container
engine, the quickstart run over REST on its worker container, and nothing left after `down -v`.

Minutes: 45–80 s measured where the images are cached, 334 s on a first run that makes them (README, "Run a sweep
cluster"). Skipped where no engine is installed, except in CI (`CI` set; `.ci/run` installs podman), where a missing
engine fails the test. The script gives each run its own compose project, ports and temporary folder and tears down
on failure and on SIGTERM, so two suites on one machine do not collide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "scripts" / "compose-smoke"
TIMEOUT = 3600  # first run: base + postgres images and a torch image build


def engine() -> str | None:
    """podman with podman-compose (the dev extra installs it beside this Python), else Docker with Compose v2."""
    bin_dir = str(Path(sys.executable).parent)
    if shutil.which("podman") and (shutil.which("podman-compose") or shutil.which("podman-compose", path=bin_dir)):
        return "podman"
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return "docker"
    return None


@pytest.mark.container
def test_the_composed_cluster_runs_the_quickstart_on_its_worker_and_down_leaves_nothing() -> None:
    if engine() is None:
        message = "no container engine (podman + podman-compose, or Docker with Compose v2)"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}; .ci/run installs podman, runc and debootstrap")
        pytest.skip(message)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    smoke = subprocess.Popen(
        [sys.executable, str(SMOKE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = smoke.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        smoke.terminate()  # SIGTERM: the script still runs `down -v` and removes what is left
        output, _ = smoke.communicate(timeout=600)
        pytest.fail(f"compose-smoke still running after {TIMEOUT}s:\n{output[-8000:]}")
    summary = [line for line in output.splitlines() if line.startswith("compose-smoke: ")]
    print("\n".join(summary))  # the figures: `pytest -rP` shows them
    assert smoke.returncode == 0 and summary[-1].startswith("compose-smoke: passed in "), output[-12000:]
    assert any("(ray-worker-cpu), driver on the head" in line for line in summary), summary
    assert any(line.startswith("compose-smoke: quickstart over REST: ") for line in summary), summary
