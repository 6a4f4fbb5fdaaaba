"""The shipped study specs: `studies/*.yaml`, installed with the package as `afpe.studies`.

They are package data (not files next to a checkout), so `afpe run quickstart` and the service find them
after a plain `pip install .`, from any working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_specs_dir() -> Path:
    """The folder holding the shipped `*.yaml` specs inside the installed package."""
    return Path(str(files("afpe.studies")))


def shipped_spec_names() -> list[str]:
    """Names of the shipped specs (file stems), sorted."""
    return sorted(path.stem for path in shipped_specs_dir().glob("*.yaml"))


def spec_path(name_or_path: str | Path) -> Path:
    """A spec file from a path, or else from the name of a shipped spec (`quickstart` or `quickstart.yaml`).

    An existing file wins over a shipped name. Raises FileNotFoundError naming the shipped specs when
    neither exists."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_specs_dir() / f"{Path(str(name_or_path)).name.removesuffix('.yaml')}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    known = ", ".join(shipped_spec_names()) or "none"
    raise FileNotFoundError(f"{name_or_path}: no such study spec file, and no shipped spec of that name ({known})")
