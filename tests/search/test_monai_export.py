"""`afpe export NAME --format monai` on a real finished study (`kept_study`): the printed snippet runs with real
MONAI and its position embedding is the one the study's scales to use (`summary.scales_to_use`) trained with;
studies it cannot export give one line and exit 2; nothing imports MONAI before the export asks for it."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from monai.networks.blocks import PatchEmbeddingBlock
from monai.networks.nets import ViT
from sqlalchemy.engine import make_url

from afpe.encodings import build_encoding
from afpe.encodings.upstream import rounding_bound
from afpe.search import summarize, validate_spec
from afpe.search.kept_models import best_checkpoint
from afpe.search.testing import tiny_synthetic2d
from afpe.service.cli import main
from afpe.trainers import task_info
from afpe.trainers.model_file import load_model

VIT_MARK = "# MONAI's ViT"


def exported(storage: str, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["export", name, "--storage", storage, "--format", "monai"]) == 0
    return capsys.readouterr().out


def call_keywords(snippet: str, callee: str) -> dict:
    """The keyword arguments (literals) of the snippet's one call of `callee`."""
    (call,) = [n for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call) and ast.unparse(n.func) == callee]
    return {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}


@pytest.fixture
def kept(kept_study: tuple[str, dict], monkeypatch: pytest.MonkeyPatch):
    """(storage, spec, the search trial of the scales to use, (the best configuration's trial, its kept model
    file)) of the finished study `kept`."""
    storage, spec = kept_study
    monkeypatch.delenv("AFPE_ARTIFACT_DIR", raising=False)
    study = optuna.load_study(study_name="kept", storage=storage)
    best, meta = best_checkpoint(study.trials, "minimize")
    model_file = Path(make_url(storage).database).with_name("study-artifacts") / "kept" / meta.artifact_id
    use = summarize(study).use
    return storage, spec, study.trials[use.number], (best, model_file)


def test_the_snippet_builds_monai_modules_with_the_embedding_of_the_scales_to_use(kept, capsys) -> None:
    storage, spec, best, (checkpointed, model_file) = kept
    snippet = exported(storage, "kept", capsys)
    scales = [best.params["s_rows"], best.params["s_cols"]]
    assert f"trial {best.number}" in snippet and f"SCALES = {scales!r}" in snippet
    assert "the smoothed optimum" in snippet  # 6 complete trials: the rule picks the smoothed optimum
    info = task_info(spec["task"], spec["task_options"])
    model = validate_spec(spec).trainer.model

    namespace: dict = {}
    exec(snippet[: snippet.index(VIT_MARK)], namespace)  # everything but MONAI's ViT (it needs einops)
    block = namespace["patch_embedding"]
    assert isinstance(block, PatchEmbeddingBlock) and block.n_patches == len(block.position_embeddings[0])
    pe = build_encoding("afpe", info.patch_grid, model.dim, scales=scales, seed=best.user_attrs["pe_seed"])
    assert (block.position_embeddings - pe()).abs().max().item() <= rounding_bound(pe.frequencies())
    trained, _ = load_model(model_file)  # what the best configuration trained with (CLS token first)
    assert trained.pos_embed.n_tokens == 1
    kept_scales = [checkpointed.params["s_rows"], checkpointed.params["s_cols"]]
    kept_pe = build_encoding(
        "afpe", info.patch_grid, model.dim, scales=kept_scales, seed=checkpointed.user_attrs["pe_seed"]
    )
    assert (kept_pe() - trained.pos_embed()[:, 1:]).abs().max().item() <= rounding_bound(kept_pe.frequencies())
    x = torch.randn(3, *info.input_shape)
    assert block(x).shape == (3, *trained.pos_embed()[:, 1:].shape[1:])

    vit = call_keywords(snippet, "ViT")
    inspect.signature(ViT).bind(**vit)  # MONAI's ViT takes every argument (and no pos_embed_kwargs)
    assert vit["img_size"] == list(info.input_shape[1:]) and vit["patch_size"] == list(info.patch_size)
    assert (vit["hidden_size"], vit["num_heads"], vit["num_layers"]) == (model.dim, model.heads, model.depth)
    assert vit["pos_embed_type"] == "fourier" and vit["classification"] and vit["num_classes"] == info.n_outputs


def test_the_whole_snippet_runs_with_monais_vit(kept, capsys) -> None:
    storage, spec, best, _ = kept
    namespace: dict = {}
    exec(exported(storage, "kept", capsys), namespace)
    info = task_info(spec["task"], spec["task_options"])
    scales = [best.params["s_rows"], best.params["s_cols"]]
    pe = build_encoding(
        "afpe", info.patch_grid, spec["trainer"]["model"]["dim"], scales=scales, seed=best.user_attrs["pe_seed"]
    )
    embedding = namespace["vit"].patch_embedding.position_embeddings
    assert (embedding - pe()).abs().max().item() <= rounding_bound(pe.frequencies())


def test_the_exported_file_runs_where_afpe_is_installed(kept, tmp_path: Path) -> None:
    """The file `afpe export --out` writes, run by this environment's Python in a process of its own (einops is
    a dependency of afpe): its ViT's position table is afpe's for the best configuration."""
    storage, spec, best, _ = kept
    path, table = tmp_path / "afpe_monai.py", tmp_path / "table.pt"
    assert main(["export", "kept", "--storage", storage, "--format", "monai", "--out", str(path)]) == 0
    code = (
        "import runpy, sys, torch; namespace = runpy.run_path(sys.argv[1], run_name='__main__'); "
        "torch.save(namespace['vit'].patch_embedding.position_embeddings.detach(), sys.argv[2])"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path), str(table)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    info = task_info(spec["task"], spec["task_options"])
    scales = [best.params["s_rows"], best.params["s_cols"]]
    pe = build_encoding(
        "afpe", info.patch_grid, spec["trainer"]["model"]["dim"], scales=scales, seed=best.user_attrs["pe_seed"]
    )
    monai_table = torch.load(table, weights_only=True)
    assert monai_table.shape == pe().shape
    assert (monai_table - pe()).abs().max().item() <= rounding_bound(pe.frequencies())


def test_studies_it_cannot_export_get_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    specs = {
        "empty": tiny_synthetic2d(name="empty"),
        "baseline": tiny_synthetic2d(name="baseline", encoding="sincos", axes=[], n_trials=1),
        "isotropic": tiny_synthetic2d(
            name="isotropic", encoding="fourier", axes=[{"name": "all", "grid_axes": [0, 1], "low": 0.1, "high": 10}]
        ),
    }
    for name, spec in specs.items():
        optuna.create_study(study_name=name, storage=storage).set_user_attr(
            "spec", validate_spec(spec).model_dump(mode="json")
        )
    optuna.create_study(study_name="bare", storage=storage)
    reasons = {
        "empty": "has no COMPLETE trial yet",
        "baseline": "its encoding 'sincos' has no scales",
        "isotropic": "its encoding 'fourier' is not MONAI's fourier embedding",
        "bare": "has no stored spec",
    }
    for name, reason in reasons.items():
        assert main(["export", name, "--storage", storage, "--format", "monai"]) == 2, name
        captured = capsys.readouterr()
        assert captured.out == "" and reason in captured.err and len(captured.err.splitlines()) == 1, captured.err


def test_nothing_imports_monai_until_the_export_runs() -> None:
    code = "import sys, afpe.service.cli, afpe.search.monai_export; print('monai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
