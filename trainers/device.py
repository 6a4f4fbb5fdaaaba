"""Where a run trains and in which precision.

- `select_device`: a run's `device` setting ("auto" = CUDA when usable, else every CPU core).
- `granted_device`: the device of a search trial, from the GPUs its scheduler (Ray) granted it: CPU when none
  (whatever CUDA the node has), the granted GPU otherwise; a granted GPU that torch cannot use is an error
  naming the driver/wheel mismatch, never a silent CPU run.
- `memory_fraction`: the share of a GPU's memory a trial granted part of it may take (torch's per-process cap).
- `autocast_dtype`, `autocast_context`: bf16 autocast on CUDA, float32 (no autocast) elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

#: Oldest NVIDIA Linux driver each CUDA major version of a torch wheel runs on (CUDA minor-version compatibility).
MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
OLDER_DRIVER_WHEELS = "https://download.pytorch.org/whl/cu126"


class DeviceError(ValueError):
    """A device the run was given or asked for cannot be used (the message says why and what to install)."""


def select_device(device: str, num_threads: int | None) -> torch.device:
    """ "auto" -> CUDA when available, else CPU with `num_threads` (None = every core this process may use).
    Raises DeviceError for "cuda"/"cuda:N" without a usable CUDA."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but {cuda_unusable_reason()} (use device='auto' or 'cpu')")
    if device == "cpu":
        torch.set_num_threads(num_threads or len(os.sched_getaffinity(0)))
    return torch.device(device)


def granted_device(gpu_ids: Sequence[int | str], cuda_available: bool, visible_devices: str | None = None) -> str:
    """The device string of a trial that was granted the GPUs `gpu_ids` ("cpu" for none). Ray sets
    CUDA_VISIBLE_DEVICES (`visible_devices`) to the granted ids, so the first one is cuda:<its position
    there>, or cuda:<id> when the variable does not list it. Raises DeviceError when GPUs were granted but
    `cuda_available` is False."""
    if not gpu_ids:
        return "cpu"
    if not cuda_available:
        raise DeviceError(
            f"this trial was granted GPU {', '.join(map(str, gpu_ids))} but {cuda_unusable_reason()}; "
            "refusing to train on CPU instead"
        )
    visible = [item.strip() for item in (visible_devices or "").split(",") if item.strip()]
    first = str(gpu_ids[0])
    return f"cuda:{visible.index(first) if first in visible else first}"


def memory_fraction(gpu_share: float) -> float | None:
    """The cap on GPU memory of a trial granted `gpu_share` of one GPU: the share itself when it is a fraction
    (0 < share < 1; Ray only counts fractions, so without the cap one trial's caches could take the memory of
    the trials packed beside it), None (no cap) for a whole GPU or none. The caller applies it with
    `torch.cuda.set_per_process_memory_fraction(fraction, device)`; an allocation past it raises OOM."""
    return gpu_share if 0 < gpu_share < 1 else None


def cuda_unusable_reason() -> str:
    """Why torch cannot use CUDA here: a CPU-only wheel, or the wheel's CUDA version and the driver it needs."""
    cuda = torch.version.cuda
    if cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA wheel of torch, see the README)"
    driver = MIN_DRIVER.get(cuda.split(".")[0], "one supporting CUDA " + cuda)
    return (
        f"torch {torch.__version__} (built for CUDA {cuda}) cannot use it: torch.cuda.is_available() is False. "
        f"This wheel needs NVIDIA driver >= {driver}; update the driver, or install a torch wheel built for the "
        f"installed driver (e.g. pip install torch --index-url {OLDER_DRIVER_WHEELS}; see `nvidia-smi` and the README)"
    )


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The compute precision of a run on `device`: bfloat16 autocast on CUDA, float32 elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def autocast_context(device: torch.device) -> AbstractContextManager:
    """The autocast context of a run on `device`; where the precision is float32 it changes nothing (an
    autocast the caller entered stays active: benchmarks/gpu.py trains under CPU bf16 autocast that way)."""
    dtype = autocast_dtype(device)
    return nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def precision_name(device: str | torch.device) -> str:
    """`autocast_dtype` of `device` as recorded with a trial: "bfloat16" or "float32"."""
    return str(autocast_dtype(torch.device(device))).removeprefix("torch.")
