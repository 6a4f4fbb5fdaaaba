"""A study spec from outside into `StudySpec`: a YAML/JSON file or a REST body, `--set key=value` overrides
(and the dashboard form's override lines), validated once with one `SpecError` naming each bad field; and the
confinement of a job's `data_root` to the service's data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from afpe.search.spec import SpecError, StudySpec
from afpe.trainers.options import split_assignment


def format_validation_error(error: ValidationError) -> list[str]:
    """One `field.path: message` line per pydantic error (cross-field messages carry their own path)."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return lines


def validate_spec(data: Any, source: str = "spec") -> StudySpec:
    """`StudySpec.model_validate` with errors turned into one SpecError naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a study spec must be a mapping, got {type(data).__name__}")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{source}: " + "; ".join(format_validation_error(error))) from None


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides in place; values parse as YAML (`3`, `0.5`, `[1, 2]`, `null`).
    A numeric path part indexes a list (`axes.0.high=8`)."""
    for override in overrides:
        try:
            key, text = split_assignment(override, "--set")
        except ValueError as error:
            raise SpecError(str(error)) from None
        parts = key.split(".")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise SpecError(f"--set {key}: cannot parse {text!r}: {error}") from None
        target: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise SpecError(f"--set {key}: {'.'.join(parts[:depth]) or 'spec'} has no item {part!r}")
                part = int(part)  # type: ignore[assignment]
            elif not isinstance(target, dict):
                raise SpecError(f"--set {key}: {'.'.join(parts[:depth])} is not a mapping")
            if last:
                target[part] = value
            else:
                if isinstance(target, dict) and target.get(part) is None:
                    target[part] = {}
                target = target[part]
    return data


def apply_override_lines(data: dict[str, Any], text: str) -> dict[str, Any]:
    """`apply_overrides` for text with one `key=value` per line (blank lines and `#` comments skipped), as
    the dashboard's start form sends them."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return apply_overrides(data, lines)


def load_spec(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> StudySpec:
    """Read a YAML/JSON spec, apply `--set` overrides, validate. Raises FileNotFoundError or SpecError."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such study spec")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise SpecError(f"{file}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{file}: a study spec must be a mapping, got {type(data).__name__}")
    return validate_spec(apply_overrides(data, overrides), source=str(file))


DATA_CONFINE_ENV = "AFPE_DATA_CONFINE"


def confine_data_root(spec: StudySpec, root: str | Path) -> StudySpec:
    """`spec` with its data_root (default: `root`) replaced by its real path, which must lie inside `root`'s
    real path: the check a job of the service repeats when it starts (the folder may have been swapped for
    a link since the spec was accepted), so the trials open a path without links. SpecError otherwise."""
    base = Path(root).expanduser().resolve()
    try:
        real = Path(spec.data_root).expanduser().resolve() if spec.data_root else base
    except (ValueError, OSError, RuntimeError) as error:
        raise SpecError(f"data_root: {spec.data_root!r} is not a usable path ({error})") from None
    if not real.is_relative_to(base):
        raise SpecError(f"data_root: {spec.data_root!r} resolves to {real}, outside the data directory {base}")
    return spec.model_copy(update={"data_root": str(real)})
