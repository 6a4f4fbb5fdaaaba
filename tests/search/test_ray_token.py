"""Issue 14 row 17: the private Ray of `afpe run` reads a token file only its owner can read (Ray itself
would write ~/.ray/auth_token with the default umask)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from afpe.search.ray_token import TOKEN_ENV, ensure_private_token

START_PRIVATE_RAY = """
import ray
from afpe.search.driver import ray_session
with ray_session(None):
    assert ray.get(ray.remote(lambda: 42).remote()) == 42
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_token_file_is_private(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_private_token()
    assert path == home / ".ray" / "auth_token" and len(path.read_text()) == 64
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    token = path.read_text()
    path.chmod(0o644)  # as Ray wrote it before
    assert ensure_private_token() == path and mode(path) == 0o600 and path.read_text() == token
    path.unlink()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-the-environment")
    assert ensure_private_token() is None and not path.exists()


def test_a_private_ray_runs_with_the_private_token(home: Path) -> None:
    env = {**os.environ, "HOME": str(home)}
    for name in (*TOKEN_ENV, "RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", START_PRIVATE_RAY], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert mode(home / ".ray" / "auth_token") == 0o600
