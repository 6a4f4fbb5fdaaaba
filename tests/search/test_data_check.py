"""`afpe run` without its data (`search/data_check.py`): one line naming `data_root`, exit code 2, within
seconds, before Ray (not even imported) and before the storage is opened (no study, no trial)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: `afpe` as its console script runs it, then whether Ray was imported.
AFPE_THEN_RAY = (
    "import sys; from afpe.service.cli import main; code = main(sys.argv[1:]); "
    "print('ray imported:', 'ray' in sys.modules); sys.exit(code)"
)


def afpe_then_ray(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """(the finished `afpe` run, its seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", AFPE_THEN_RAY, *args], env=env, capture_output=True, text=True, timeout=300
    )
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def spec_refusal_s() -> float:
    """Seconds `afpe run` takes to refuse a spec that does not validate (Python, torch and the spec's loading:
    what every refusal costs on this machine at its present load)."""
    done, seconds = afpe_then_ray("run", "organmnist3d-afpe", "--set", "n_trials=0", env=dict(os.environ))
    assert done.returncode == 2 and "n_trials" in done.stderr, done.stderr
    return seconds


@pytest.mark.parametrize(
    ("data_root", "line"),
    [
        ("/nonexistent", "afpe: error: data_root: data_root /nonexistent of task 'medmnist3d' is not a directory"),
        (None, "afpe: error: data_root: task 'medmnist3d' reads a dataset: set data_root (--data-root DIR)"),
    ],
)
def test_a_run_without_its_data_stops_in_one_line_before_ray_starts(
    data_root: str | None, line: str, user_env: dict[str, str], tmp_path: Path, spec_refusal_s: float
) -> None:
    """Within 15 s on an idle machine; on a loaded one, within 5 s more than refusing an invalid spec takes."""
    storage = tmp_path / "afpe.db"
    args = ["run", "organmnist3d-afpe", "--set", "n_trials=1", "--set", "repeats=null"]
    args += ["--storage", f"sqlite:///{storage}", *(["--set", f"data_root={data_root}"] if data_root else [])]
    done, seconds = afpe_then_ray(*args, env=user_env)
    assert (done.returncode, done.stderr.splitlines()) == (2, [line])
    assert done.stdout.splitlines() == ["ray imported: False"]
    assert not storage.exists()  # never opened: no study, no trial
    bound = max(15.0, spec_refusal_s + 5.0)
    assert seconds < bound, f"{seconds:.1f} s to the refusal (an invalid spec's: {spec_refusal_s:.1f} s)"
