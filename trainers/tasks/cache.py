"""On-disk cache of decoded/resized arrays, so later epochs and later trials do not decode again.

Location: env `AFPE_CACHE_DIR` (default ~/.cache/afpe), never the (possibly read-only) data root. An entry
is a folder of `.npy` files keyed by the identity of its source files (resolved path, size, mtime) and the
options that shaped it. One process builds an entry while the others wait (a `filelock` lock file beside it,
`.<key>.lock`: concurrent trials decode once, not once each); it is built in a temporary folder and renamed
into place, so a crashed builder leaves no partial entry. An array may be built as a stream of row blocks (one
decoded image or video at a time), written as it comes, so a build never holds a whole dataset in memory (EchoNet's
training split is tens of GB decoded). Arrays come back memory-mapped. The search driver
builds a study's entries before its trials start (`Task.prepare`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from filelock import FileLock

VERSION = 1
DECODE_AHEAD = 8

Item = TypeVar("Item")

#: What a builder returns: name -> array, or name -> row blocks (concatenated along axis 0 as they are written);
#: as a mapping or as (name, value) pairs (pairs let a later value depend on blocks already consumed).
Built = Mapping[str, np.ndarray | Iterable[np.ndarray]] | Iterable[tuple[str, np.ndarray | Iterable[np.ndarray]]]


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
    kind: str, sources: Iterable[Path], options: dict[str, Any], build: Callable[[], Built]
) -> dict[str, np.ndarray]:
    """The arrays `build()` returns for these sources and options (`Built`), from the cache when present."""
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


def _build(entry: Path, options: dict[str, Any], build: Callable[[], Built]) -> None:
    """Write `build()`'s arrays into a temporary folder beside `entry`, then rename it to `entry`."""
    building = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        built = build()
        for name, value in built.items() if isinstance(built, Mapping) else built:
            if isinstance(value, np.ndarray):
                np.save(building / f"{name}.npy", np.ascontiguousarray(value))
            else:
                _save_blocks(building / f"{name}.npy", value)
        (building / "complete").write_text(json.dumps(options, sort_keys=True))
        building.rename(entry)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _save_blocks(path: Path, blocks: Iterable[np.ndarray]) -> None:
    """`np.save(path, np.concatenate(blocks))` holding one block in memory at a time: the rows go to a raw file
    as they come, then behind numpy's header once their count is known (numpy's `open_memmap` needs the shape
    up front; a video decoder learns it as it goes). ValueError for no blocks or blocks of unlike rows."""
    raw_path, first, rows = path.with_suffix(".raw"), None, 0
    with raw_path.open("wb") as raw:
        for block in blocks:
            block = np.ascontiguousarray(block)
            first = block if first is None else first
            if block.dtype != first.dtype or block.shape[1:] != first.shape[1:]:
                raise ValueError(f"{path.stem}: a block of {block.dtype} {block.shape[1:]} after {first.dtype} rows")
            raw.write(block.data)
            rows += len(block)
    if first is None:
        raise ValueError(f"{path.stem}: no blocks to save")
    header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False}
    with path.open("wb") as file, raw_path.open("rb") as raw:
        np.lib.format.write_array_header_1_0(file, {**header, "shape": (rows, *first.shape[1:])})
        shutil.copyfileobj(raw, file, 1 << 20)
    raw_path.unlink()


def decoded_in_order(
    decode: Callable[[Item], np.ndarray], items: Sequence[Item], ahead: int = DECODE_AHEAD
) -> Iterator[np.ndarray]:
    """`decode(item)` of each item, in order, on `ahead` threads that run at most `ahead` decodes past the one
    being read: the row blocks of a streamed build. (`Executor.map` submits every item at once and keeps each
    result until it is read: measured, a streamed EchoNet build then held half its split in memory.)"""
    with ThreadPoolExecutor(ahead) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(decode, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
