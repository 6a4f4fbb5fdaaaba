"""`afpe export NAME --format monai`: the study's best scales as ready-to-paste MONAI (>= 1.6) code.

The snippet builds a `PatchEmbeddingBlock` and a `monai.networks.nets.ViT` with `pos_embed_type="fourier"` on the
study's input (img_size, patch_size from the task, hidden_size, heads, depth, mlp_dim from the trainer settings) and
gives both the position embedding afpe trained with: MONAI's `build_fourier_position_embedding` with the answer's
scales to use (`summary.scales_to_use`: the smoothed optimum's configuration, else the best configuration's; the
rule and why are in `summary.py`), drawn after `torch.manual_seed(pe_seed)` of the search trial that tried them
(`afpe.encodings.upstream` says what equals what: the block's conv
draws from the RNG first, and MONAI's ViT takes no `pos_embed_kwargs`, so both get the seeded builder's table).
Scales are converted by `upstream.monai_scales` for the study's positions (`trainer.positions`: normalized ones
unchanged, physical ones times the token spacing in reference lengths · (grid - 1)). Only the positional encoding
carries over: MONAI's blocks, head and CLS token (not position-encoded there) are its own, and no weights are
exported (`--checkpoint` keeps those).
"""

from __future__ import annotations

import optuna

from afpe.core.errors import UserError
from afpe.encodings.upstream import monai_fourier_arguments
from afpe.search.spec import StudySpec
from afpe.search.spec_loading import validate_spec
from afpe.search.summary import summarize_trials
from afpe.trainers import build_task

ENCODING = "afpe"  # MONAI's fourier embedding is afpe's


def monai_text(study: optuna.Study) -> str:
    """The MONAI snippet of `study`'s best configuration (see the module docstring). UserError naming the reason
    for a study that has no spec, another encoding than afpe or no COMPLETE trial yet; SpecError when its spec
    does not validate here (a task this install does not know: its input geometry is needed)."""
    name = study.study_name
    spec = _spec(study)
    if spec.encoding != ENCODING:
        why = "has no scales" if not spec.axes else "is not MONAI's fourier embedding (that is afpe)"
        raise UserError(f"study {name!r}: --format monai exports afpe's scales; its encoding {spec.encoding!r} {why}")
    trials = study.get_trials(deepcopy=False)
    summary = summarize_trials(name, trials, spec.search_space())
    use = summary.use
    if use is None:
        raise UserError(f"study {name!r} has no COMPLETE trial yet, so no best scales to export")
    best = next(t for t in trials if t.number == use.number)
    scales = use.grid_scales
    pe_seed = int(best.user_attrs.get("pe_seed", spec.pe_seed))
    info = build_task(spec.task, spec.task_options).info(spec.trainer.model.patch_size)
    model = spec.trainer.model
    pool = info.resolve_pool(model.pool, model.cls_token)
    positions = spec.trainer.positions
    spacing = info.encoding_spacing(positions, spec.trainer.reference_length)
    pe = monai_fourier_arguments(info.patch_grid, model.dim, scales, positions=positions, spacing=spacing)
    converted = (
        "Positions are normalized (linspace(0, 1) per grid axis) here as in MONAI, so the scales carry over "
        "unconverted."
        if spacing is None
        else f"The study's scales {[round(s, 6) for s in scales]} are for physical positions: converted to MONAI's "
        "linspace(0, 1) positions."
    )
    common = (
        f"in_channels={info.input_shape[0]}, img_size={list(info.input_shape[1:])}, "
        f"patch_size={list(info.patch_size)}, hidden_size={model.dim}, num_heads={model.heads}"
    )
    head = "classification=False"
    if pool == "cls":
        head = f"classification=True, num_classes={info.n_outputs}, post_activation=None"
    readout = {
        "cls": "a linear head on the CLS token (MONAI's CLS token has no position embedding)",
        "mean": "a linear head on the mean patch token: add yours on the tokens the ViT returns",
        "tokens": f"{info.n_outputs} value(s) per patch token: add your head on the tokens the ViT returns",
        "voxels": f"{info.n_outputs} classes per voxel: the study's UNETR-style decoder reads the input and every "
        "block's tokens (MONAI's UNETR takes no pos_embed_type: copy this table into its "
        "vit.patch_embedding.position_embeddings, frozen)",
    }[pool]
    estimate = next(e for e in summary.answer.estimates if e.number == use.number)
    runs = f"mean of {estimate.n} runs" if estimate.n > 1 else "one run"
    ratio = f", ratio s_{summary.ratio[0]}/s_{summary.ratio[1]} {use.ratio:.4g}" if use.ratio and summary.ratio else ""
    mean = f"{spec.metric} {estimate.mean:.6g}, {runs}{ratio}"
    axes = ", ".join(info.axis_names)
    return f'''\
# afpe export {name} --format monai (MONAI >= 1.6): the scales to use, the {use.source}: trial {best.number} ({mean}).
# Why the {use.source}: {use.why}.
# {converted}
import torch
from monai.networks.blocks import PatchEmbeddingBlock
from monai.networks.blocks.pos_embed_utils import build_fourier_position_embedding
from monai.networks.nets import ViT

SCALES = {pe["scales"]!r}  # per patch-grid axis ({axes}) of the grid {pe["grid_size"]}
PE_SEED = {pe_seed}  # the study's frequency draw


def fourier_embedding() -> torch.nn.Parameter:
    """afpe's table: MONAI's builder right after torch.manual_seed(PE_SEED) (the caller's RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PE_SEED)
        return build_fourier_position_embedding({pe["grid_size"]}, {pe["embed_dim"]}, {pe["spatial_dims"]}, SCALES)


patch_embedding = PatchEmbeddingBlock(
    {common},
    pos_embed_type="fourier", pos_embed_kwargs={{"scales": SCALES}}, spatial_dims={pe["spatial_dims"]},
)
# Its conv draws from the RNG before the embedding, so seeding before the block gives another draw: set it.
patch_embedding.position_embeddings = fourier_embedding()

# MONAI's ViT needs einops: installed with afpe (elsewhere: pip install 'monai[einops]').
# The study's model read out {readout}.
vit = ViT(
    {common},
    mlp_dim={int(model.dim * model.mlp_ratio)}, num_layers={model.depth}, qkv_bias=True,
    pos_embed_type="fourier", spatial_dims={pe["spatial_dims"]}, {head},
)
# It takes no pos_embed_kwargs (its fourier embedding would have scales 1): give it the study's.
vit.patch_embedding.position_embeddings = fourier_embedding()
'''


def _spec(study: optuna.Study) -> StudySpec:
    """The study's stored spec, validated; UserError when it has none, SpecError when it no longer validates."""
    data = study.user_attrs.get("spec")
    if not data:
        raise UserError(f"study {study.study_name!r} has no stored spec: its model's geometry is unknown")
    return validate_spec(data, source=f"study {study.study_name!r}'s spec")
