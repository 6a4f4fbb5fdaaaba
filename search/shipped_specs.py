"""The shipped study specs (`studies/*.yaml`) and campaigns (`studies/campaigns/*.yaml`), installed with the
package as `afpe.studies`.

They are package data (not files next to a checkout), so `afpe run quickstart` and the service find them
after a plain `pip install .`, from any working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_specs_dir() -> Path:
    """The folder holding the shipped `*.yaml` specs inside the installed package."""
    return Path(str(files("afpe.studies")))


def shipped_campaigns_dir() -> Path:
    """The folder holding the shipped campaign `*.yaml` files inside the installed package."""
    return shipped_specs_dir() / "campaigns"


def shipped_spec_names() -> list[str]:
    """Names of the shipped specs (file stems), sorted."""
    return sorted(path.stem for path in shipped_specs_dir().glob("*.yaml"))


def shipped_campaign_names() -> list[str]:
    """Names of the shipped campaigns (file stems), sorted."""
    return sorted(path.stem for path in shipped_campaigns_dir().glob("*.yaml"))


def spec_path(name_or_path: str | Path) -> Path:
    """A spec file from a path, or else from the name of a shipped spec (`quickstart` or `quickstart.yaml`).

    An existing file wins over a shipped name. Raises FileNotFoundError naming the shipped specs when
    neither exists."""
    return _file_or_shipped(name_or_path, shipped_specs_dir(), "study spec")


def campaign_path(name_or_path: str | Path) -> Path:
    """A campaign file from a path, or else from the name of a shipped campaign (`anisotropy`). An existing
    file wins; FileNotFoundError naming the shipped campaigns when neither exists."""
    return _file_or_shipped(name_or_path, shipped_campaigns_dir(), "campaign")


def _file_or_shipped(name_or_path: str | Path, folder: Path, kind: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = folder / f"{Path(str(name_or_path)).name.removesuffix('.yaml')}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
    raise FileNotFoundError(f"{name_or_path}: no such {kind} file, and no shipped {kind} of that name ({known})")
