"""A training run's resume state (its checkpoint): one file `checkpoint.pt` in the run's folder, written atomically
(temporary file + rename) after every epoch, holding model, optimizer, scheduler and RNG states, the
history and the best epoch so far (and its weights), plus the run identity it belongs to."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 2  # 2: the best epoch's weights (`best_model`) kept beside the last epoch's


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory).expanduser() / CHECKPOINT_FILE


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (tensors, dicts, lists, numbers, strings) atomically; returns the file."""
    return save_atomically(checkpoint_path(directory), {"format": FORMAT, **state})


def save_atomically(path: str | Path, content: dict[str, Any]) -> Path:
    """`torch.save(content)` to `path` through a temporary file in the same folder and a rename, so a reader
    sees the old file or the new one, never half of one; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(content, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(directory: str | Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state, None when there is none; ValueError when it belongs to another run."""
    path = checkpoint_path(directory)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {state.get('format')!r}, expected {FORMAT}")
    saved = state.get("identity", {})
    changed = [key for key in sorted(set(saved) | set(identity)) if saved.get(key) != identity.get(key)]
    if changed:
        key = changed[0]
        raise ValueError(
            f"checkpoint {path} belongs to another run: {key} was {saved.get(key)!r}, now {identity.get(key)!r} "
            "(use another checkpoint directory)"
        )
    return state
