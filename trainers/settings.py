"""Validated settings of a training run: the model, the optimisation (`TrainerSettings`, shared with search
specs) and one run (`TrainConfig`: task, encoding, scales, seeds, data)."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from afpe.core.per_axis import PerAxis


class ModelConfig(BaseModel):
    """The ViT's shape. `patch_size` None takes the task's default (which follows its anisotropy)."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(48, ge=8, le=4096, description="token width (48: divisible by 12, as sincos needs in 3D)")
    depth: int = Field(2, ge=1, le=64, description="number of transformer blocks")
    heads: int = Field(4, ge=1, le=64, description="attention heads per block")
    mlp_ratio: float = Field(2.0, gt=0, le=16, description="MLP hidden width / dim")
    patch_size: Annotated[list[int], PerAxis(ge=1)] | None = Field(
        None, description="patch size, one value or one per axis; None = task default"
    )
    cls_token: bool = True
    pool: Literal["cls", "mean", "tokens", "voxels"] | None = Field(
        None,
        description="cls or mean: one prediction per input; tokens: one per patch; voxels: one per voxel through a "
        "UNETR-style decoder (segmentation); None = the task's (its dense pooling, else cls, or mean without a "
        "CLS token)",
    )
    decoder_features: int = Field(16, ge=1, le=512, description="pool voxels: the decoder's feature size F (UNETR's)")

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.pool == "cls" and not self.cls_token:
            raise ValueError("pool='cls' needs cls_token=true (or use pool='mean')")
        return self


class TrainerSettings(BaseModel):
    """How to train, independent of task and encoding (a search spec's `trainer` section)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.01, ge=0, le=10)
    warmup_epochs: float = Field(1.0, ge=0, le=100_000, description="linear warm-up length in epochs")
    schedule: Literal["cosine", "exponential"] = Field(
        "cosine", description="decay after warm-up: cosine to 0, or x0.97 per epoch (the published ChestX run)"
    )
    limit: int | None = Field(None, ge=1, description="cap on training samples (None = all)")
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm (None = no clipping)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto = CUDA when present")
    num_threads: int | None = Field(None, ge=1, le=1024, description="CPU threads (None = all cores)")
    loader_workers: int | None = Field(
        None, ge=0, le=64, description="data loader processes (None = on CUDA one per CPU but one, on CPU none)"
    )
    positions: Literal["normalized", "physical"] = Field(
        "normalized",
        description="token positions of the Fourier encodings: normalized = linspace(0, 1) per grid axis; physical "
        "= token index x the task's token spacing (pixels, voxels, frames) / reference_length",
    )
    reference_length: float | None = Field(
        None,
        gt=0,
        le=1e12,
        description="physical positions: the length, in the task's units, a scale's cycles are counted over "
        "(None = the field of view's largest extent)",
    )
    model: ModelConfig = Field(default_factory=ModelConfig)


class TrainConfig(TrainerSettings):
    """One training run: `TrainerSettings` plus what is trained on what."""

    task: str = Field(..., min_length=1)
    task_options: dict[str, Any] = Field(default_factory=dict)
    encoding: str = "fourier"
    scales: list[float] | None = Field(None, description="one scale per patch-grid axis (afpe, lfpe, lsfpe)")
    scale: float = Field(1.0, ge=0, description="global frequency scale (fourier)")
    pe_seed: int = Field(0, description="seed of the encoding's random draw, separate from `seed`")
    seed: int = Field(0, description="seed of initialisation and data order")
    data_root: str | None = Field(None, description="dataset folder of the real-data tasks")
    metric: str | None = Field(None, description="objective metric (None = the task's default)")

    @field_validator("data_root", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value
