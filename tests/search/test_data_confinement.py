"""Issue 14 row 15: a job of the service re-checks `data_root` when it starts (the folder accepted at POST may
have been swapped for a link out of the data directory since) and trains on its real path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from afpe.search import load_spec
from afpe.search.shipped_specs import spec_path
from afpe.search.spec import SpecError
from afpe.search.spec_loading import DATA_CONFINE_ENV, confine_data_root


def test_the_real_path_must_lie_in_the_data_directory(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "secrets"
    (data / "medmnist").mkdir(parents=True)
    outside.mkdir()
    spec = load_spec(spec_path("quickstart"), [f"data_root={data / 'medmnist'}"])
    assert confine_data_root(spec, data).data_root == str((data / "medmnist").resolve())
    assert confine_data_root(load_spec(spec_path("quickstart")), data).data_root == str(data.resolve())
    (data / "medmnist").rmdir()
    (data / "medmnist").symlink_to(outside)  # swapped after the service accepted the spec
    with pytest.raises(SpecError, match="outside the data directory"):
        confine_data_root(spec, data)


def test_a_job_refuses_a_swapped_data_root(tmp_path: Path, afpe_executable: str, user_env: dict[str, str]) -> None:
    data, outside = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    outside.mkdir()
    (data / "set").symlink_to(outside)
    spec = load_spec(spec_path("quickstart"), [f"data_root={data / 'set'}", "name=swapped"]).model_dump(mode="json")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**user_env, DATA_CONFINE_ENV: str(data), "AFPE_STORAGE": f"sqlite:///{tmp_path / 's.db'}"}
    result = subprocess.run(
        [afpe_executable, "run", "spec.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2 and "data_root" in result.stderr and "outside" in result.stderr, result.stderr
    assert not (tmp_path / "s.db").exists(), "refused before the study was opened"
