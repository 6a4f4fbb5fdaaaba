"""Positional encodings for ViT token grids (2D image, 3D volume, time×H×W video) and their similarity maps.

Math and conventions: ../shared/REFERENCE.md. Add an encoding with one module and one line in `registry.py`.
"""

from afpe.encodings.base import EncodingArgs, PositionalEncoding, grid_positions
from afpe.encodings.registry import SCALED_ENCODINGS, build_encoding, list_encodings
from afpe.encodings.similarity import fourier_similarity, similarity_map

__all__ = [
    "SCALED_ENCODINGS",
    "EncodingArgs",
    "PositionalEncoding",
    "build_encoding",
    "fourier_similarity",
    "grid_positions",
    "list_encodings",
    "similarity_map",
]
