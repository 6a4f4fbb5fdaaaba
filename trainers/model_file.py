"""A trained model as one file: the weights of a run's best epoch and what rebuilds the model without its data
(the `ViT` keyword arguments, the run's `TrainConfig`, the best epoch's metrics). Only tensors, dicts, lists,
strings, numbers, booleans and None: `torch.load(path, weights_only=True)` reads it; `load_model` rebuilds
the ViT from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from afpe.trainers.settings import TrainConfig
from afpe.trainers.tasks.base import TaskInfo
from afpe.trainers.vit import ViT

KIND = "afpe-model"
FORMAT = 1


def model_arguments(config: TrainConfig, info: TaskInfo) -> dict[str, Any]:
    """The `ViT` keyword arguments of `config` on a task described by `info` (plain lists and numbers).
    ValueError naming `model.pool` when the pooling does not fit the task (`TaskInfo.resolve_pool`)."""
    return {
        "in_channels": info.input_shape[0],
        "spatial": list(info.input_shape[1:]),
        "patch_size": list(info.patch_size),
        "n_outputs": info.n_outputs,
        "encoding": config.encoding,
        "scales": None if config.scales is None else list(config.scales),
        "scale": config.scale,
        "pe_seed": config.pe_seed,
        "spacing": _list(info.encoding_spacing(config.positions, config.reference_length)),
        "dim": config.model.dim,
        "depth": config.model.depth,
        "heads": config.model.heads,
        "mlp_ratio": config.model.mlp_ratio,
        "cls_token": config.model.cls_token,
        "pool": info.resolve_pool(config.model.pool, config.model.cls_token),
        "decoder_features": config.model.decoder_features,
    }


def _list(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else list(values)


def model_content(config: TrainConfig, result: dict[str, Any]) -> dict[str, Any]:
    """The file's content for a finished `train(config)` result: kind, format, vit (the ViT's arguments),
    config (the TrainConfig as JSON, its `data_root` only the dataset folder's name: the file is handed to
    others, e.g. by the service's unauthenticated download, and the path says where the trainer ran),
    best_epoch, metric, direction, metrics (of the best epoch) and model (the best epoch's state dict).
    ValueError when the run has no best epoch."""
    if result.get("model") is None:
        raise ValueError("the run has no best epoch: no model to keep")
    return {
        "kind": KIND,
        "format": FORMAT,
        "vit": result["model_arguments"],
        "config": {**config.model_dump(mode="json"), "data_root": config.data_root and Path(config.data_root).name},
        "best_epoch": result["best_epoch"],
        "metric": result["metric"],
        "direction": result["direction"],
        "metrics": result["metrics"],
        "model": result["model"],
    }


def load_model(path: str | Path) -> tuple[ViT, dict[str, Any]]:
    """The ViT rebuilt from a model file (on the CPU, in eval mode, its weights loaded strictly) and the file's
    content. ValueError when the file is not a model file of this format."""
    content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict) or content.get("kind") != KIND or content.get("format") != FORMAT:
        raise ValueError(f"{path} is not an AFPE model file of format {FORMAT}")
    model = ViT(**content["vit"])
    model.load_state_dict(content["model"])
    return model.eval(), content
