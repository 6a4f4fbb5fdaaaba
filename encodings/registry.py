"""The one registry convention of the project, and the registry of positional encodings.

Encodings, tasks (`afpe.trainers.tasks`) and plot kinds (`afpe.service.plots.kinds`) are kept alike, as timm
keeps its models: an item class or object carries its own `name` (and any traits as attributes), a
`register_*` decorator adds it where it is defined, `list_*` gives the names in registration order (optionally
filtered by traits) and `build_*`/`get` makes or returns one by name. No list of names is kept anywhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from afpe.encodings.base import EncodingArgs, PositionalEncoding

T = TypeVar("T")


class Registry(Generic[T]):
    """Items by their `name` attribute, in registration order; `kind` names them in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Add `item` under `item.name` (usable as a class decorator). A name registered twice is a ValueError."""
        name = item.name  # type: ignore[attr-defined]
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def names(self, **traits: Any) -> list[str]:
        """Registered names whose attributes equal every given trait, e.g. `names(scale_search="per_axis")`."""
        return [name for name, item in self._items.items() if _has(item, traits)]

    def get(self, name: str) -> T:
        """The item `name`; ValueError listing the valid names when there is none."""
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self._items)}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())


def _has(item: Any, traits: dict[str, Any]) -> bool:
    return all(getattr(item, key) == value for key, value in traits.items())


ENCODINGS: Registry[type[PositionalEncoding]] = Registry("encoding")
register_encoding: Callable[[type[PositionalEncoding]], type[PositionalEncoding]] = ENCODINGS.register


def list_encodings(**traits: Any) -> list[str]:
    """Names of the registered encodings (filtered by class attributes, e.g. `scale_search="per_axis"`)."""
    _load_builtin()
    return ENCODINGS.names(**traits)


def build_encoding(
    name: str,
    grid: Sequence[int],
    dim: int,
    *,
    scales: Sequence[float] | None = None,
    scale: float = 1.0,
    n_tokens: int = 0,
    seed: int = 0,
    temperature: float = 10000.0,
    spacing: Sequence[float] | None = None,
) -> PositionalEncoding:
    """Build encoding `name` for a token `grid` (1 to 3 axes) of width `dim`.

    The module returns (1, n_tokens + prod(grid), dim) when called: extra tokens first, then the grid
    row-major. `seed` fixes every random draw. `spacing` None places the tokens at normalized positions
    (`linspace(0, 1, n)` per axis); else at physical ones, index · spacing_j, with the token spacing in reference
    lengths (`base.grid_positions`). Bad input raises ValueError naming what is allowed.
    """
    _load_builtin()
    encoding = ENCODINGS.get(name)
    args = EncodingArgs(
        grid=tuple(grid),
        dim=dim,
        scales=None if scales is None else tuple(float(s) for s in scales),
        scale=float(scale),
        n_tokens=n_tokens,
        seed=seed,
        temperature=float(temperature),
        spacing=None if spacing is None else tuple(float(h) for h in spacing),
    )
    return encoding(args)


#: Modules whose classes register themselves, imported in this order (the order `list_encodings` shows).
BUILTIN_MODULES = ("afpe.encodings.tables", "afpe.encodings.fourier")


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
