"""The registry of positional encodings, after the project's one registry convention (`afpe.core.registry`, which
the tasks and the service's plot kinds follow too): an encoding class carries its `name` and `scale_search` and the
`register_encoding` decorator in its own module of this package; `list_encodings` and `build_encoding` find it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from afpe.core.registry import Registry, import_submodules
from afpe.encodings.base import EncodingArgs, PositionalEncoding

#: The order encodings are listed in: baselines without a scale first, then one isotropic scale, then per-axis scales
#: (each in the order they are defined).
SCALE_SEARCH_ORDER = ("none", "isotropic", "per_axis")
ENCODINGS: Registry[type[PositionalEncoding]] = Registry(
    "encoding", order=lambda encoding: SCALE_SEARCH_ORDER.index(encoding.scale_search)
)
register_encoding: Callable[[type[PositionalEncoding]], type[PositionalEncoding]] = ENCODINGS.register


def list_encodings(**traits: Any) -> list[str]:
    """Names of the registered encodings (filtered by class attributes, e.g. `scale_search="per_axis"`)."""
    _load_builtin()
    return ENCODINGS.names(**traits)


def check_encoding_dim(name: str, dim: int, n_axes: int) -> None:
    """ValueError when encoding `name` cannot be `dim` wide on `n_axes` grid axes (e.g. sincos: a multiple of
    2 n_axes), without building it."""
    _load_builtin()
    ENCODINGS.get(name).check_dim(dim, n_axes)


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


def _load_builtin() -> None:
    import_submodules("afpe.encodings", "@register_encoding")
