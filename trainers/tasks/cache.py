"""On-disk cache of decoded/resized arrays, so later epochs and later trials do not decode again.

Location: env `AFPE_CACHE_DIR` (default ~/.cache/afpe), never the (possibly read-only) data root. An entry
is a folder of `.npy` files keyed by the identity of its source files (resolved path, size, mtime) and the
options that shaped it; it is built in a temporary folder and renamed into place (atomic, safe for
concurrent trials). Arrays come back memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1


def cache_root() -> Path:
    return Path(os.environ.get("AFPE_CACHE_DIR", "~/.cache/afpe")).expanduser()


def file_identity(paths: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(resolved path, size, mtime_ns) of every source file."""
    identity = []
    for path in paths:
        stat = path.stat()
        identity.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return identity


def cached_arrays(
    kind: str, sources: Iterable[Path], options: dict[str, Any], build: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The arrays `build()` returns for these sources and options, from the cache when present."""
    key = hashlib.sha256(
        json.dumps({"version": VERSION, "sources": file_identity(sources), "options": options}, sort_keys=True).encode()
    ).hexdigest()[:24]
    entry = cache_root() / kind / key
    if not (entry / "complete").is_file():
        entry.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
        try:
            for name, array in build().items():
                np.save(building / f"{name}.npy", np.ascontiguousarray(array))
            (building / "complete").write_text(json.dumps(options, sort_keys=True))
            try:
                building.rename(entry)
            except OSError:  # another process finished the same entry first
                if not (entry / "complete").is_file():
                    raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return {path.stem: np.load(path, mmap_mode="r") for path in sorted(entry.glob("*.npy"))}
