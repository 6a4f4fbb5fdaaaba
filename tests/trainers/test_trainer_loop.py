"""The training loop: reports, best-epoch objective, checkpoint resume, the best epoch's model file, and a real
learning test (a position-dependent phantom needs a positional encoding)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from afpe.trainers import TrainConfig, build_task, train
from afpe.trainers.batches import eval_loader
from afpe.trainers.loop import evaluate, lr_factor
from afpe.trainers.model_file import load_model
from afpe.trainers.resume_state import checkpoint_path

SMALL = {
    "task": "synthetic2d",
    "task_options": {"n_train": 32, "n_val": 32},
    "batch_size": 8,
    "num_threads": 2,
    "model": {"dim": 32, "depth": 1, "heads": 2},
}


class Interrupt(Exception):
    pass


def test_report_once_per_epoch_and_objective_is_the_best_epoch() -> None:
    seen = []
    result = train(TrainConfig(epochs=3, metric="val_loss", **SMALL), report=lambda e, m: seen.append((e, m)))
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    losses = [metrics["val_loss"] for _, metrics in seen]
    assert result["objective"] == min(losses) and result["direction"] == "minimize"
    assert result["best_epoch"] == losses.index(min(losses)) + 1
    assert result["metrics"] == seen[result["best_epoch"] - 1][1]
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]


def test_an_exception_in_report_stops_training_and_propagates() -> None:
    def report(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(TrainConfig(epochs=5, **SMALL), report=report)


def test_interrupted_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=3,
        task="synthetic_video",
        task_options={"n_train": 16, "n_val": 8, "size": 16},
        batch_size=8,
        num_threads=2,
        model={"dim": 32, "depth": 1, "heads": 2},
    )
    straight = train(config)

    def stop_after_two(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, report=stop_after_two, checkpoint_dir=tmp_path)
    assert checkpoint_path(tmp_path).is_file()
    resumed_epochs = []
    resumed = train(config, report=lambda e, m: resumed_epochs.append(e), checkpoint_dir=tmp_path)
    assert resumed_epochs == [3], "only the missing epoch runs"
    assert resumed["epochs"] == 3 and len(resumed["history"]) == 3
    for ours, reference in zip(resumed["history"], straight["history"], strict=True):
        for key, value in reference.items():
            assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # a finished run is not trained again, and its best epoch's weights come back from the checkpoint
    again = []
    finished = train(config, report=lambda e, m: again.append(e), checkpoint_dir=tmp_path)
    assert finished["epochs"] == 3 and not again and finished["best_epoch"] == straight["best_epoch"]
    for key, value in straight["model"].items():
        assert torch.allclose(finished["model"][key], value, rtol=1e-4, atol=1e-6), key


def test_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    train(TrainConfig(epochs=1, encoding="none", **SMALL), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="belongs to another run: encoding was 'none', now 'fourier'"):
        train(TrainConfig(epochs=2, encoding="fourier", **SMALL), checkpoint_dir=tmp_path)


def test_checkpoint_write_is_atomic(tmp_path: Path) -> None:
    train(TrainConfig(epochs=2, **SMALL), checkpoint_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"], "no temporary files left behind"
    state = torch.load(checkpoint_path(tmp_path), weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "rng"} <= set(state)


def test_the_model_file_rebuilds_the_best_epochs_model(tmp_path: Path) -> None:
    data_root = str(tmp_path / "private" / "datasets")  # issue 30 row 12: the file keeps only the folder's name
    config = TrainConfig(epochs=3, metric="val_loss", encoding="afpe", scales=[0.5, 2.0], data_root=data_root, **SMALL)
    written = []
    result = train(
        config, report=lambda e, m: written.append((tmp_path / "model.pt").is_file()), model_file=tmp_path / "model.pt"
    )
    assert written == [False, False, True], "written after the last epoch, before its report"
    model, content = load_model(tmp_path / "model.pt")
    assert content["best_epoch"] == result["best_epoch"] and content["metrics"] == result["metrics"]
    assert content["config"]["scales"] == [0.5, 2.0] and content["vit"]["encoding"] == "afpe"
    assert content["config"]["data_root"] == "datasets" and str(tmp_path) not in repr(content["config"])
    task = build_task(config.task, config.task_options, None)
    loader = eval_loader(task.datasets()[1], config.batch_size, 0, False)
    again = evaluate(model, loader, task.objective, torch.device("cpu"), contextlib.nullcontext())
    assert again["val_loss"] == pytest.approx(result["objective"], rel=1e-5)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an AFPE model file"):
        load_model(tmp_path / "other.pt")


def test_pe_seed_changes_only_the_encoding_draw() -> None:
    from afpe.trainers import ViT

    def build(seed: int, pe_seed: int) -> ViT:
        torch.manual_seed(seed)
        return ViT(
            in_channels=1,
            spatial=(16, 16),
            patch_size=(4, 4),
            n_outputs=2,
            encoding="afpe",
            scales=[1.0, 0.5],
            pe_seed=pe_seed,
            dim=32,
            depth=1,
            heads=2,
        )

    a, b, c = build(0, 0), build(0, 1), build(1, 0)
    assert not torch.equal(a.pos_embed(), b.pos_embed()) and torch.equal(a.head.weight, b.head.weight)
    assert torch.equal(a.pos_embed(), c.pos_embed()) and not torch.equal(a.head.weight, c.head.weight)


@pytest.mark.parametrize("schedule", ["cosine", "exponential"])
def test_learning_rate_warms_up_then_decays(schedule: str) -> None:
    factors = [lr_factor(step, 10, 2, 10, schedule) for step in range(100)]
    assert factors[0] < factors[10] < factors[19] <= 1.0, "linear warm-up over 2 epochs"
    assert all(later <= earlier for earlier, later in zip(factors[20:], factors[21:], strict=False))
    if schedule == "exponential":
        assert factors[30] == pytest.approx(0.97 * factors[20])
    else:
        assert factors[99] < 0.01


def test_fourier_encoding_beats_none_on_a_position_dependent_phantom() -> None:
    """Which quadrant holds the bright square: with no encoding the ViT is permutation-invariant over
    patches and stays at chance (0.25); a Fourier encoding learns it."""
    settings = {
        "task": "synthetic2d",
        "epochs": 4,
        "lr": 5e-3,
        "batch_size": 16,
        "warmup_epochs": 0.5,
        "num_threads": 2,
        "seed": 0,
        "pe_seed": 0,
        "metric": "accuracy",
    }
    fourier = train(TrainConfig(encoding="fourier", **settings))["objective"]
    none = train(TrainConfig(encoding="none", **settings))["objective"]
    assert none < 0.35, "without position the quadrant is guesswork"
    assert fourier > none + 0.4 and fourier > 0.8
