"""A segmentation study as a user runs it: the shipped Decathlon spec by name on a NIfTI folder (anisotropic
voxels, resampled to the spec's pixdim), physical positions in mm, the Dice answer in the status, the kept model
rebuilt with its decoder, and the best scales exported for MONAI with the table the model trained with."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import torch

from afpe.encodings.upstream import rounding_bound
from afpe.search import SpecError, load_spec
from afpe.trainers.model_file import load_model

SPLEEN = Path(__file__).resolve().parents[2] / "studies" / "msd-spleen-afpe.yaml"
TINY = [
    "n_trials=2",
    "trainer.epochs=1",
    "trainer.batch_size=2",
    "trainer.model={dim: 32, depth: 2, heads: 2, mlp_ratio: 2.0}",
    "task_options.roi=[32, 32, 16]",
    "task_options.patch=[8, 8, 4]",
    "resources={cpus: 1, gpu: 0}",
    "repeats={top_k: 1, seeds: 1}",  # the spec's repeats, cut to one
]


def afpe(executable: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_spleen_spec_runs_reports_dice_in_mm_and_exports_for_monai(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path, msd_root: Path
) -> None:
    sets = [item for override in [f"data_root={msd_root}", *TINY] for item in ("--set", override)]
    run = afpe(afpe_executable, "run", "msd-spleen-afpe", *sets, env=user_env, cwd=tmp_path)
    assert "study msd-spleen-afpe: 2/2 finished" in run.stdout, run.stdout
    assert "torch.jit.interface" not in run.stdout + run.stderr  # MONAI's import-time deprecation, silenced

    status = json.loads(afpe(afpe_executable, "status", "msd-spleen-afpe", "--json", env=user_env, cwd=tmp_path).stdout)
    assert status["metric"] == "dice" and 0.0 <= status["best"]["mean"] <= 1.0
    assert status["best"]["n"] == 2  # the best configuration's search trial and its repeat
    # 32 x 32 x 16 voxels of 1.5 x 1.5 x 5 mm in patches of 8 x 8 x 4: tokens 12 x 12 x 20 mm apart
    assert status["positions"] == (
        "positions physical: scales in cycles per 80 mm (token spacing x: 12 mm, y: 12 mm, z: 20 mm)"
    )

    afpe(afpe_executable, "export", "msd-spleen-afpe", "--checkpoint", "best.pt", env=user_env, cwd=tmp_path)
    model, content = load_model(tmp_path / "best.pt")
    assert content["metric"] == "dice" and set(content["metrics"]) >= {"dice", "dice_spleen", "val_loss"}
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32, 16)).shape == (1, 2, 32, 32, 16)  # background + spleen per voxel

    snippet = afpe(afpe_executable, "export", "msd-spleen-afpe", "--format", "monai", env=user_env, cwd=tmp_path).stdout
    assert "2 classes per voxel" in snippet and "are for physical positions" in snippet
    (line,) = [line for line in snippet.splitlines() if line.startswith("SCALES = ")]
    exported = ast.literal_eval(re.sub(r"\s*#.*$", "", line.removeprefix("SCALES = ")))
    namespace: dict = {}
    exec(snippet[: snippet.index("# MONAI's ViT")], namespace)  # the PatchEmbeddingBlock, not MONAI's ViT
    theirs = namespace["patch_embedding"].position_embeddings
    ours = model.pos_embed()[:, 1:]  # the table the kept model trained with, CLS row dropped
    bound = rounding_bound(model.pos_embed.gaussian * torch.tensor(exported))
    assert theirs.shape == ours.shape and (theirs - ours).abs().max().item() <= bound


def test_physical_positions_without_pixdim_are_refused_naming_it() -> None:
    """Without pixdim a trial reads the spacing from the headers, which the study's notes and export cannot see."""
    with pytest.raises(SpecError, match=r"task_options.pixdim: set the voxel size \(mm\)"):
        load_spec(SPLEEN, ["task_options.pixdim=null"])
    spec = load_spec(SPLEEN, ["task_options.pixdim=null", "trainer.positions=normalized"])
    assert spec.search_space().positions_note is None
