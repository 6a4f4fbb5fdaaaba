"""On-disk cache of decoded/resized arrays, so later epochs and later trials do not decode again.

Location: env `AFPE_CACHE_DIR` (default ~/.cache/afpe), never the (possibly read-only) data root. An entry
is a folder of `.npy` files keyed by the identity of its source files (resolved path, size, mtime) and the
options that shaped it. One process builds an entry while the others wait (a `filelock` lock file beside it,
`.<key>.lock`: concurrent trials decode once, not once each); it is built in a temporary folder and renamed
into place, so a crashed builder leaves no partial entry. Arrays come back memory-mapped. The search driver
builds a study's entries before its trials start (`Task.prepare`).
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
from filelock import FileLock

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
        with FileLock(entry.parent / f".{key}.lock"):
            if not (entry / "complete").is_file():  # not built by the process we waited for
                _build(entry, options, build)
    return {path.stem: np.load(path, mmap_mode="r") for path in sorted(entry.glob("*.npy"))}


def _build(entry: Path, options: dict[str, Any], build: Callable[[], dict[str, np.ndarray]]) -> None:
    """Write `build()`'s arrays into a temporary folder beside `entry`, then rename it to `entry`."""
    building = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        for name, array in build().items():
            np.save(building / f"{name}.npy", np.ascontiguousarray(array))
        (building / "complete").write_text(json.dumps(options, sort_keys=True))
        building.rename(entry)
    finally:
        shutil.rmtree(building, ignore_errors=True)
