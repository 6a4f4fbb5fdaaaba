"""Positional encodings for ViT token grids (2D image, 3D volume, time×H×W video) and their similarity maps.

The math of each encoding is in its module's docstring (`tables.py`, `fourier.py`). Add an encoding with one
module whose class carries `name` (and `scale_search`) and the `@register_encoding` decorator.
"""

from afpe.encodings.base import EncodingArgs, PositionalEncoding, grid_positions
from afpe.encodings.registry import Registry, build_encoding, list_encodings, register_encoding
from afpe.encodings.similarity import fourier_similarity, similarity_map

#: Encodings whose frequencies follow per-axis scales (what a per-axis scale search can tune).
SCALED_ENCODINGS = tuple(list_encodings(scale_search="per_axis"))

__all__ = [
    "SCALED_ENCODINGS",
    "EncodingArgs",
    "PositionalEncoding",
    "Registry",
    "build_encoding",
    "fourier_similarity",
    "grid_positions",
    "list_encodings",
    "register_encoding",
    "similarity_map",
]
