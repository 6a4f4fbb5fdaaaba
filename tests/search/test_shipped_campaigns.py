"""Issue 29, item 4: each shipped campaign runs end to end by name from another directory (small overrides: one
trial of one epoch per study) and answers with its whole table: every study succeeded with a mean, the lead
encoding's comparisons, the searched encodings' ratio trend. Minutes each (about 25 s of Tune start-up per study)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from afpe.search.testing import TINY_CAMPAIGN_OVERRIDES


@pytest.mark.slow
@pytest.mark.parametrize(("name", "studies", "comparisons"), [("anisotropy", 20, 16), ("spacing", 6, 0)])
def test_a_shipped_campaign_runs_by_name_from_another_directory(
    name: str, studies: int, comparisons: int, tmp_path: Path, afpe_executable: str, user_env: dict[str, str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'afpe.db'}"
    run = subprocess.run(
        [
            afpe_executable,
            "campaign",
            "run",
            name,
            "--storage",
            storage,
            *map("--set={}".format, TINY_CAMPAIGN_OVERRIDES),
        ],
        env=user_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    status = [afpe_executable, "campaign", "status", name, "--storage", storage, "--format", "json"]
    table = json.loads(subprocess.run(status, env=user_env, capture_output=True, text=True, check=True).stdout)
    assert table["state"] == "succeeded" and len(table["studies"]) == studies
    assert all(row["state"] == "succeeded" and row["mean"] is not None for row in table["studies"])
    assert len(table["comparisons"]) == comparisons and all(c["difference"] is not None for c in table["comparisons"])
    scaled = [row for row in table["studies"] if row["encoding"] in ("afpe", "fourier")]
    assert [t["ratio"] for t in table["trend"]] == [row["ratio"] for row in scaled if row["ratio"] is not None]
    assert len(table["trend"]) == (4 if name == "anisotropy" else 6)  # afpe's ratio per value; fourier has none
