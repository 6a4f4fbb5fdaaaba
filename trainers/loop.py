"""The training loop: AdamW (fused on CUDA), linear warm-up then cosine (or x0.97 per epoch) decay, gradient
clipping, bf16 autocast on CUDA, seeded initialisation, a separate `pe_seed`, persistent loaders with a seeded
data order and augmentation (`batches.py`), one `report` per epoch, checkpoint/resume, and the best epoch tracked
(the objective is the best validation value, not the last)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from afpe.trainers.batches import eval_loader, loader_workers, train_loader
from afpe.trainers.device import autocast_context, select_device
from afpe.trainers.model_file import model_arguments, model_content
from afpe.trainers.objectives import Objective
from afpe.trainers.resume_state import load_checkpoint, save_atomically, save_checkpoint
from afpe.trainers.settings import TrainConfig
from afpe.trainers.tasks import build_task
from afpe.trainers.tasks.base import normalize
from afpe.trainers.vit import ViT

Report = Callable[[int, dict[str, float]], None]

#: Fields of a config that a checkpoint must match to be resumed (epochs may grow; device may change).
IDENTITY_FIELDS = (
    "task",
    "task_options",
    "encoding",
    "scales",
    "scale",
    "pe_seed",
    "seed",
    "data_root",
    "model",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "schedule",
    "limit",
    "grad_clip",
)
#: Identity fields added later, with their defaults: they join the identity only when set, so that checkpoints
#: written before them still resume.
LATER_IDENTITY_FIELDS = {"positions": "normalized", "reference_length": None}

EXPONENTIAL_GAMMA = 0.97


def train(
    config: TrainConfig | dict[str, Any],
    report: Report | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    model_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train `config.task` with `config.encoding`; returns metrics (of the best epoch), epochs, seconds,
    best_epoch, metric, direction, objective, history, model (the best epoch's state dict on the CPU, None
    before the first epoch) and model_arguments (the ViT's: see `model_file.py`). With `model_file`, the best
    epoch's model file is written there once the last epoch ran, before that epoch's `report` (a scheduler may
    end the run at that report). An exception raised by `report` stops training."""
    config = config if isinstance(config, TrainConfig) else TrainConfig.model_validate(config)
    task = build_task(config.task, config.task_options, config.data_root)
    info = task.info(config.model.patch_size)
    metric = config.metric or info.default_metric
    if metric not in info.metrics:
        raise ValueError(
            f"metric {metric!r} is not reported by task {config.task!r}; choose one of {list(info.metrics)}"
        )
    if config.scales is not None and len(config.scales) != info.ndim:
        raise ValueError(
            f"scales needs one value per patch-grid axis {info.axis_names} of task {config.task!r}, got {config.scales}"
        )
    direction = info.metrics[metric]
    device = select_device(config.device, config.num_threads)

    torch.manual_seed(config.seed)
    arguments = model_arguments(config, info)
    model = ViT(**arguments).to(device)

    train_set, val_set = task.datasets()
    n_train = len(train_set) if config.limit is None else min(config.limit, len(train_set))
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    on_cuda = device.type == "cuda"  # fused AdamW (one kernel for all parameters) and pinned host batches
    cpus = config.num_threads or len(os.sched_getaffinity(0))
    workers = loader_workers(device, cpus) if config.loader_workers is None else config.loader_workers
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr, fused=on_cuda)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, config.warmup_epochs, config.epochs, config.schedule)
    )

    identity = config.model_dump(mode="json", include=set(IDENTITY_FIELDS) | set(LATER_IDENTITY_FIELDS))
    identity = {k: v for k, v in identity.items() if k not in LATER_IDENTITY_FIELDS or v != LATER_IDENTITY_FIELDS[k]}
    epoch, best_epoch, history, seconds, best_state = 0, 0, [], 0.0, None
    saved = load_checkpoint(checkpoint_dir, identity) if checkpoint_dir is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        epoch, best_epoch, history, seconds = saved["epoch"], saved["best_epoch"], saved["history"], saved["seconds"]
        best_state = saved["best_model"]

    def outcome() -> dict[str, Any]:
        """What `train` returns, as of the last epoch run."""
        best = {k: v for k, v in history[best_epoch - 1].items() if k != "epoch"} if best_epoch else {}
        return {
            "metrics": best,
            "epochs": epoch,
            "seconds": seconds,
            "best_epoch": best_epoch,
            "metric": metric,
            "direction": direction,
            "objective": best.get(metric, math.nan),
            "history": history,
            "model": best_state,
            "model_arguments": arguments,
        }

    train_batches, order = train_loader(train_set, n_train, config.batch_size, config.seed, workers, on_cuda)
    val_batches = eval_loader(val_set, config.batch_size, workers, on_cuda)
    autocast = autocast_context(device)
    while epoch < config.epochs:
        started = time.perf_counter()
        epoch += 1
        order.set_epoch(epoch)
        train_loss = _train_epoch(
            model, train_batches, task.objective, optimizer, scheduler, config.grad_clip, device, autocast
        )
        metrics = {**evaluate(model, val_batches, task.objective, device, autocast), "train_loss": train_loss}
        history.append({"epoch": epoch, **metrics})
        if best_epoch == 0 or _better(metrics[metric], history[best_epoch - 1][metric], direction):
            best_epoch = epoch
            best_state = {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}
        seconds += time.perf_counter() - started
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir,
                {
                    "identity": identity,
                    "epoch": epoch,
                    "best_epoch": best_epoch,
                    "history": history,
                    "seconds": seconds,
                    "model": model.state_dict(),
                    "best_model": best_state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
            )
        if model_file is not None and epoch == config.epochs:
            save_atomically(model_file, model_content(config, outcome()))
        if report is not None:
            report(epoch, metrics)
    return outcome()


def lr_factor(step: int, steps_per_epoch: int, warmup_epochs: float, epochs: int, schedule: str) -> float:
    """Multiplier of the base lr at optimizer step `step`: linear warm-up over `warmup_epochs`, then cosine
    to 0 at the last step, or x0.97 per epoch after warm-up."""
    warmup = warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "exponential":
        return EXPONENTIAL_GAMMA ** ((step - warmup) / steps_per_epoch)
    progress = (step - warmup) / max(1.0, epochs * steps_per_epoch - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def evaluate(
    model: torch.nn.Module, loader: DataLoader, objective: Objective, device: torch.device, autocast: Any
) -> dict[str, float]:
    """Validation metrics of `model` over the whole (deterministic) loader, batch by batch (`Objective.scorer`)."""
    model.eval()
    scorer = objective.scorer()
    with torch.no_grad(), autocast:
        for inputs, target in loader:
            scorer.add(model(normalize(inputs.to(device, non_blocking=True))).float().cpu(), target)
    model.train()
    return scorer.result()


def _train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float | None,
    device: torch.device,
    autocast: Any,
) -> float:
    """One pass over the training loader; returns the mean training loss (summed on the device: one host sync
    per epoch, not per step)."""
    model.train()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for inputs, targets in loader:
        inputs, targets = normalize(inputs.to(device, non_blocking=True)), targets.to(device, non_blocking=True)
        with autocast:
            loss = objective.loss(model(inputs).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.detach() * len(inputs)
        count += len(inputs)
    return float(total) / max(count, 1)


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and kernels only (not on biases, norms, tokens or 1-D scales)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 and parameter.shape[0] > 1 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _better(new: float, old: float, direction: str) -> bool:
    if math.isnan(new):
        return False
    if math.isnan(old):
        return True
    return new > old if direction == "maximize" else new < old
