"""`afpe specs` lists every shipped spec (name, task, encoding, n_trials, the description's first line), and the
top-level help names every export format."""

from __future__ import annotations

import json

import pytest
import yaml

from afpe.search.shipped_specs import shipped_specs_dir
from afpe.service.cli import main


def test_afpe_specs_lists_every_shipped_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["specs", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    files = sorted(shipped_specs_dir().glob("*.yaml"))
    assert sorted(rows) == [path.stem for path in files] and "quickstart" in rows
    for path in files:
        data = yaml.safe_load(path.read_text())
        row = rows[path.stem]
        assert (row["task"], row["description"]) == (data["task"], data["description"].splitlines()[0])
        assert row["n_trials"] == data.get("n_trials", 50) and row["encoding"] == data.get("encoding", "afpe")
    assert main(["specs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "task", "encoding", "n_trials", "description"] and len(lines) == len(files) + 1
    assert lines[1 + sorted(rows).index("quickstart")].split()[:4] == ["quickstart", "synthetic3d_field", "afpe", "16"]


def test_the_top_level_help_names_every_export_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "export a study's trials (csv, json: one row per trial), its best scales as MONAI code (monai)" in help_text
    assert "specs list the shipped study specs" in help_text
