"""What a spec would cost to run, computed without loading data or building a model: the ViT's parameter
count, the tokens per sample, the activations of a batch and the data a synthetic task generates. The
service bounds each (`spec_admission.SpecAdmission.validate`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from afpe.search.spec import StudySpec
from afpe.trainers.tasks.registry import build_task

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class SpecCost:
    model_params: int
    tokens: int
    activation_bytes: int
    generated_bytes: int


def spec_cost(spec: StudySpec) -> SpecCost:
    """The cost of one trial of a validated spec. ValueError (naming the field) for a patch size the input
    cannot take.

    Parameters are the transformer's weights (patch embedding, per block attention qkv + projection, MLP and
    two layer norms), without the encoding table and the head: a lower bound within a few percent. Activations
    are the float32 token features each block keeps for the backward pass, `batch_size × tokens × dim × depth`
    (a lower bound: attention and MLP intermediates come on top). Generated
    data are `n_train + n_val` samples of the task's input shape in float32, for the tasks that generate
    their data (those whose options carry `n_train`/`n_val`)."""
    model = spec.trainer.model
    task = build_task(spec.task, spec.task_options)
    try:
        info = task.info(model.patch_size)
    except ValueError as error:
        raise ValueError(f"trainer.model.patch_size: {error}") from None
    channels, dim = info.input_shape[0], model.dim
    hidden = round(model.mlp_ratio * dim)
    block = (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (2 * dim * hidden + hidden + dim) + 4 * dim
    embedding = channels * math.prod(info.patch_size) * dim + dim
    tokens = math.prod(info.patch_grid) + (1 if model.cls_token else 0)
    samples = getattr(task.options, "n_train", 0) + getattr(task.options, "n_val", 0)
    return SpecCost(
        model_params=embedding + model.depth * block,
        tokens=tokens,
        activation_bytes=spec.trainer.batch_size * tokens * dim * model.depth * FLOAT32_BYTES,
        generated_bytes=samples * math.prod(info.input_shape) * FLOAT32_BYTES,
    )
