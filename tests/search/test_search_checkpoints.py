"""Kept checkpoints on a real search (`kept_study`: local Ray, the real trainer, SQLite): the model files of the
configurations the answer can pick (top_k and their repeats) are Optuna artifacts of their trials, the others are
pruned; the best one is the answer's best configuration, loads with weights_only, rebuilds a ViT that gives back
its stored validation metric, and `afpe export NAME --checkpoint` writes it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from sqlalchemy.engine import make_url

from afpe.search import summarize, validate_spec
from afpe.search.analysis import REPEAT_OF, complete_trials, search_trials
from afpe.search.checkpoints import best_checkpoint
from afpe.service.cli import main
from afpe.trainers import build_task
from afpe.trainers.batches import eval_loader
from afpe.trainers.loop import evaluate
from afpe.trainers.model_file import load_model


def test_a_finished_search_keeps_the_best_configurations_checkpoints_and_exports_the_best(
    kept_study: tuple[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    storage, spec = kept_study
    monkeypatch.delenv("AFPE_ARTIFACT_DIR", raising=False)
    study = optuna.load_study(study_name="kept", storage=storage)
    trials = study.trials
    folder = Path(make_url(storage).database).with_name("study-artifacts") / "kept"  # beside the SQLite file

    top = sorted(complete_trials(search_trials(trials)), key=lambda t: t.value)[:2]
    kept = {t.number for t in top} | {t.number for t in trials if REPEAT_OF in t.user_attrs}
    assert len(trials) == 6 and len(kept) == 4
    metas = {t.number: get_all_artifact_meta(t, storage=study._storage) for t in trials}
    assert {n for n, found in metas.items() if found} == kept, "the others were pruned"
    assert all(len(metas[n]) == 1 for n in kept)
    assert sorted(p.name for p in folder.iterdir()) == sorted(metas[n][0].artifact_id for n in kept)

    best, meta = best_checkpoint(trials, "minimize")
    assert best.number == summarize(study, validate_spec(spec)).answer.best.number and meta == metas[best.number][0]
    path = folder / meta.artifact_id
    content = torch.load(path, map_location="cpu", weights_only=True)
    assert content["config"]["scales"] == [best.params["s_rows"], best.params["s_cols"]]
    assert content["metrics"]["val_loss"] == best.value and content["best_epoch"] in (1, 2, 3)

    model, content = load_model(path)
    config = content["config"]
    task = build_task(config["task"], config["task_options"], config["data_root"])
    loader = eval_loader(task.datasets()[1], config["batch_size"], 0, False)
    again = evaluate(model, loader, task.objective, torch.device("cpu"), contextlib.nullcontext())
    assert again["val_loss"] == pytest.approx(best.value, rel=1e-5)

    out = tmp_path / "out" / "best.pt"
    assert main(["export", "kept", "--storage", storage, "--checkpoint", str(out)]) == 0
    assert f"trial {best.number}" in capsys.readouterr().out
    with FileSystemArtifactStore(folder).open_reader(meta.artifact_id) as reader:
        assert reader.read() == out.read_bytes()

    empty = optuna.create_study(study_name="no-checkpoints", storage=storage)
    empty.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    assert main(["export", "no-checkpoints", "--storage", storage, "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "has no kept checkpoint" in capsys.readouterr().err and not (tmp_path / "none.pt").exists()
