"""Lazy package exports (PEP 562): `from afpe.search import run_study` still works, but importing a package no
longer imports everything it re-exports. Without this, `afpe --version` imported torch, timm, Ray and Optuna
through the packages' `__init__` (13 s on 2 cores), and so did every light sub-module of them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that imports `exports[name]` (a module path) on first access
    of `name` and returns that module's attribute. AttributeError for a name that is not exported."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
