"""The one registry of positional encodings and its factory."""

from __future__ import annotations

from collections.abc import Sequence

from afpe.encodings.base import EncodingArgs, PositionalEncoding
from afpe.encodings.fixed import NoEncoding, SinCosEncoding
from afpe.encodings.fourier import (
    AnisotropicFourierEncoding,
    FourierEncoding,
    LearnableFourierEncoding,
    LearnableScaleFourierEncoding,
)
from afpe.encodings.learnable import LearnableEncoding

ENCODINGS: dict[str, type[PositionalEncoding]] = {
    "none": NoEncoding,
    "learnable": LearnableEncoding,
    "sincos": SinCosEncoding,
    "fourier": FourierEncoding,
    "afpe": AnisotropicFourierEncoding,
    "lfpe": LearnableFourierEncoding,
    "lsfpe": LearnableScaleFourierEncoding,
}

#: Encodings whose frequencies follow per-axis scales (what a scale search can tune).
SCALED_ENCODINGS = ("afpe", "lfpe", "lsfpe")


def list_encodings() -> list[str]:
    return list(ENCODINGS)


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
) -> PositionalEncoding:
    """Build encoding `name` for a token `grid` (1 to 3 axes) of width `dim`.

    The module returns (1, n_tokens + prod(grid), dim) when called: extra tokens first, then the grid
    row-major. `seed` fixes every random draw. Bad input raises ValueError naming what is allowed.
    """
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; valid encodings: {', '.join(ENCODINGS)}")
    args = EncodingArgs(
        grid=tuple(grid),
        dim=dim,
        scales=None if scales is None else tuple(float(s) for s in scales),
        scale=float(scale),
        n_tokens=n_tokens,
        seed=seed,
        temperature=float(temperature),
    )
    return ENCODINGS[name](args)
