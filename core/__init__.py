"""The floor below every layer: what encodings, trainers, search and service share without being about any of
them. `Registry` (the one registry convention, with "did you mean" on a miss), `lazy_exports` (packages export
lazily), `UserError` (a problem with the user's input, and its exit code), `parse_list` and `PerAxis` (values
from the user's text). `afpe.core` imports nothing of afpe outside itself; its modules import only the
standard library (and `per_axis.py` pydantic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from afpe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from afpe.core.errors import USER_ERROR_EXIT_CODE, UserError
    from afpe.core.parsing import parse_list
    from afpe.core.per_axis import PerAxis
    from afpe.core.registry import Registry, import_submodules

__getattr__ = lazy_exports(
    __name__,
    {
        "PerAxis": "afpe.core.per_axis",
        "Registry": "afpe.core.registry",
        "USER_ERROR_EXIT_CODE": "afpe.core.errors",
        "UserError": "afpe.core.errors",
        "import_submodules": "afpe.core.registry",
        "parse_list": "afpe.core.parsing",
    },
)

__all__ = [
    "USER_ERROR_EXIT_CODE",
    "PerAxis",
    "Registry",
    "UserError",
    "import_submodules",
    "lazy_exports",
    "parse_list",
]
