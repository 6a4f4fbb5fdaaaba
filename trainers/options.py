"""KEY=VALUE assignments: the one parser behind `afpe train --option`, `afpe run --set` and the dashboard's
override lines. Each caller decides how a value's text becomes a value (task options: comma lists and
scalars; spec overrides: YAML)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def split_assignment(item: str, flag: str) -> tuple[str, str]:
    """'key=value' -> ('key', 'value'); ValueError naming `flag` when there is no '=' or no key."""
    key, separator, value = item.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
    return key.strip(), value


def parse_task_options(items: Iterable[str], flag: str = "--option") -> dict[str, Any]:
    """['anisotropy=1,1,4', 'flag=organmnist3d'] -> {'anisotropy': [1, 1, 4], 'flag': 'organmnist3d'}."""
    options: dict[str, Any] = {}
    for item in items:
        key, value = split_assignment(item, flag)
        parts = [_scalar(part.strip()) for part in value.split(",")]
        options[key] = parts if "," in value else parts[0]
    return options


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
