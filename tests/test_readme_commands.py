"""The README opens with the two set-up commands, .ci/run runs the second one verbatim in a fresh venv, and the
lock pins every declared dependency inside pyproject's ranges."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md must open with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    install_and_run, install_and_test = readme_commands()
    assert install_and_run.startswith("pip install -c requirements.lock . && afpe run ")
    assert install_and_test.startswith("pip install -c requirements.lock '.[dev]' && ")
    assert "pytest" in install_and_test and "ruff check" in install_and_test


def test_the_lock_pins_every_dependency_exactly() -> None:
    import tomllib

    from packaging.requirements import Requirement

    pinned = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            assert [spec.operator for spec in requirement.specifier] == ["=="], line
            pinned[requirement.name.lower().replace("_", "-")] = requirement
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        declared = Requirement(line)
        locked = pinned.get(declared.name.lower().replace("_", "-"))
        assert locked is not None, f"{declared.name} is not in requirements.lock"
        assert declared.specifier.contains(next(iter(locked.specifier)).version), f"{locked} outside {declared}"
        assert all(spec.operator != "==" for spec in declared.specifier), f"pyproject pins {line}: use a range"


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_ci_builds_a_fresh_virtual_environment() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and ci.index("python3 -m venv") < ci.index(readme_commands()[1])
