"""Positional encodings for ViT token grids (2D image, 3D volume, time×H×W video) and their similarity maps.

The math of each encoding is in its module's docstring (`tables.py`, `fourier.py`). Add an encoding with one
module whose class carries `name` (and `scale_search`) and the `@register_encoding` decorator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afpe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from afpe.encodings.base import EncodingArgs, PositionalEncoding, grid_positions
    from afpe.encodings.registry import build_encoding, check_encoding_dim, list_encodings, register_encoding
    from afpe.encodings.similarity import fourier_similarity, similarity_map

_exported = lazy_exports(
    __name__,
    {
        "EncodingArgs": "afpe.encodings.base",
        "PositionalEncoding": "afpe.encodings.base",
        "build_encoding": "afpe.encodings.registry",
        "check_encoding_dim": "afpe.encodings.registry",
        "fourier_similarity": "afpe.encodings.similarity",
        "grid_positions": "afpe.encodings.base",
        "list_encodings": "afpe.encodings.registry",
        "register_encoding": "afpe.encodings.registry",
        "similarity_map": "afpe.encodings.similarity",
    },
)


def __getattr__(name: str) -> Any:
    """The exports above on first use, and `SCALED_ENCODINGS`: the encodings whose frequencies follow per-axis
    scales (what a per-axis scale search can tune)."""
    if name == "SCALED_ENCODINGS":
        from afpe.encodings.registry import list_encodings

        return tuple(list_encodings(scale_search="per_axis"))
    return _exported(name)


__all__ = [
    "SCALED_ENCODINGS",
    "EncodingArgs",
    "PositionalEncoding",
    "build_encoding",
    "check_encoding_dim",
    "fourier_similarity",
    "grid_positions",
    "list_encodings",
    "register_encoding",
    "similarity_map",
]
