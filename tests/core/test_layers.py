"""The layers hold: core ← encodings ← trainers ← search ← service, read from every import statement of the
packages' source (module level, inside functions and under TYPE_CHECKING alike); `afpe.core` imports nothing of
afpe outside itself."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

LAYERS = ("core", "encodings", "trainers", "search", "service")


def package_folder(layer: str) -> Path:
    return Path(importlib.import_module(f"afpe.{layer}").__path__[0])


def afpe_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import of an `afpe.` module in `source`, wherever the statement is."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, module) for line, module in found if module == "afpe" or module.startswith("afpe.")]


def violations(layer: str, path: Path, source: str) -> list[str]:
    """Each import in `source` (a module of `layer`) of a higher layer, or for core of anything of afpe but core."""
    rank = LAYERS.index(layer)
    problems = []
    for line, module in afpe_imports(source):
        target = module.split(".")[1] if "." in module else "afpe"
        allowed = target == "core" if layer == "core" else target in LAYERS[: rank + 1]
        if not allowed:
            problems.append(f"{path}:{line}: {layer} imports {module}")
    return problems


def test_no_lower_package_imports_a_higher_one_and_core_imports_nothing_of_afpe() -> None:
    problems = []
    counted = 0
    for layer in LAYERS:
        for path in sorted(package_folder(layer).rglob("*.py")):
            problems += violations(layer, path, path.read_text(encoding="utf-8"))
            counted += 1
    assert counted > 100
    assert problems == []


def test_a_back_arrow_is_found_even_inside_a_function() -> None:
    source = "from afpe.core import Registry\n\ndef late():\n    from afpe.search.spec import StudySpec\n"
    assert violations("trainers", Path("x.py"), source) == ["x.py:4: trainers imports afpe.search.spec"]
    assert violations("core", Path("y.py"), "import afpe.encodings.base\n") == [
        "y.py:1: core imports afpe.encodings.base"
    ]
    assert violations("service", Path("z.py"), source) == []
