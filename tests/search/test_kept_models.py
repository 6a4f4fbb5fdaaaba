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
from afpe.search.kept_models import artifact_root, attach, best_checkpoint, study_folder, sweep
from afpe.search.storage import open_storage
from afpe.search.trial_writes import trial_id
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


def test_a_run_removes_only_the_files_no_trial_refers_to(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="swept", storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    folder = study_folder(tmp_path / "artifacts", "swept")
    for name in ("trial-0-a.pt", "trial-1-b.pt", ".model-x.tmp"):  # kept, left by a dead driver, a cut-off write
        (folder / name).write_bytes(name.encode())
    trial = study.ask()
    assert attach(study, trial_id(trial), trial.number, folder, "trial-0-a.pt")
    assert not attach(study, trial_id(trial), trial.number, folder, "not-written.pt"), "nothing this process cannot see"
    study.tell(trial, 1.0)
    assert sweep(study, folder) == 2 and [p.name for p in folder.iterdir()] == ["trial-0-a.pt"]
    assert [meta.filename for meta in get_all_artifact_meta(study.trials[0], storage=study._storage)] == [
        "swept-trial-0.pt"
    ]


def test_the_artifact_folder_follows_the_setting_then_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AFPE_ARTIFACT_DIR")
    assert artifact_root(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a-artifacts"
    assert artifact_root("postgresql://u@h/db") == Path("~/.afpe/artifacts").expanduser()
    assert artifact_root("postgresql://u@h/db", tmp_path / "set") == tmp_path / "set"
    monkeypatch.setenv("AFPE_ARTIFACT_DIR", str(tmp_path / "env"))
    assert artifact_root(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "env"
