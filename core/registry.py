"""The one registry convention of the project (encodings, tasks, plot kinds), kept as timm keeps its models: an
item class or object carries its own `name` (and any traits as attributes), a `register_*` decorator adds it where
it is defined, `list_*` gives the names in registration order (optionally filtered by traits) and `build_*`/`get`
makes or returns one by name. The registering modules are found by `import_submodules`, so no list of names is
kept anywhere else; the items come in the order their modules' names sort, then in definition order (unless a
registry sorts them by a trait).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Items by their `name` attribute, in registration order, or sorted (stably) by `order(item)` when given;
    `kind` names them in error messages."""

    def __init__(self, kind: str, order: Callable[[T], Any] | None = None) -> None:
        self.kind = kind
        self.order = order
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Add `item` under `item.name` (usable as a class decorator). A name registered twice is a ValueError."""
        name = item.name  # type: ignore[attr-defined]
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        order = self.order
        if order is not None:
            self._items = dict(sorted(self._items.items(), key=lambda pair: order(pair[1])))
        return item

    def names(self, **traits: Any) -> list[str]:
        """Registered names whose attributes equal every given trait, e.g. `names(scale_search="per_axis")`."""
        return [name for name, item in self._items.items() if _has(item, traits)]

    def get(self, name: str) -> T:
        """The item `name`. ValueError on a miss, naming the closest registered names ("did you mean", as MONAI's
        `look_up_option`) and every valid one."""
        if name not in self._items:
            close = difflib.get_close_matches(str(name), self._items, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; valid {self.kind}s: {', '.join(self._items)}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())


def _has(item: Any, traits: dict[str, Any]) -> bool:
    return all(getattr(item, key) == value for key, value in traits.items())


@functools.cache
def import_submodules(package: str, decorator: str) -> None:
    """Import, in name order, every module of `package` (not its sub-packages) whose source applies `decorator`
    (e.g. "@register_task"): the modules whose items register themselves, found without a list of their names and
    without importing the package's other modules (a plotting module's Plotly). Done once per package."""
    for info in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda i: i.name):
        module = f"{package}.{info.name}"
        spec = importlib.util.find_spec(module)
        if not info.ispkg and spec and spec.origin and decorator in Path(spec.origin).read_text(encoding="utf-8"):
            importlib.import_module(module)
