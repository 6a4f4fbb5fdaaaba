"""Small modules: no module of core/, encodings/, trainers/, search/ or service/ over MAX_MODULE_LINES lines and
no class over MAX_CLASS_LINES (its decorators, docstring and body), read from the packages' source."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGES = ("core", "encodings", "trainers", "search", "service")
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


def oversized(path: Path, source: str) -> list[str]:
    """The module `path` itself when `source` is over MAX_MODULE_LINES lines, and each class over MAX_CLASS_LINES."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{path}: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - start + 1
            if length > MAX_CLASS_LINES:
                found.append(f"{path}:{node.lineno}: class {node.name} {length} lines")
    return found


def test_no_module_over_400_lines_and_no_class_over_200() -> None:
    found = []
    counted = 0
    for package in PACKAGES:
        for path in sorted(Path(importlib.import_module(f"afpe.{package}").__path__[0]).rglob("*.py")):
            found += oversized(path, path.read_text(encoding="utf-8"))
            counted += 1
    assert counted > 100
    assert found == []


def test_an_oversized_module_and_class_are_named() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_CLASS_LINES))
    source = f"@decorated\nclass Big:\n{body}" + "\n" * (MAX_MODULE_LINES - MAX_CLASS_LINES)
    assert oversized(Path("m.py"), source) == [f"m.py: {MAX_MODULE_LINES + 2} lines", "m.py:2: class Big 202 lines"]
    assert oversized(Path("m.py"), "class Small:\n    x = 1\n") == []
