"""The driver end to end on real local Ray, the real trainer and real PostgreSQL: ASHA -> PRUNED (the best
trial's checkpoint kept), a failing trial retried then FAIL, a Postgres backend terminated mid-study, no password
in Ray's saved state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from afpe.search import run_study, validate_spec
from afpe.search.data_check import DataRootError, check_data
from afpe.search.driver import check_resources, prepare_data, ray_session, unplaceable
from afpe.search.kept_models import trial_checkpoint
from afpe.search.testing import tiny_synthetic2d

TINY = tiny_synthetic2d(trainer={"lr": 0.003}, max_failures=1)
AXES_3D = [
    {"name": "xy", "grid_axes": [0, 1], "low": 0.1, "high": 10},
    {"name": "z", "grid_axes": [2], "low": 0.1, "high": 10},
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One private local Ray for the module (run_study uses an initialised Ray as it is)."""
    with ray_session(None):
        yield


@pytest.fixture(autouse=True)
def private_tune_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tune"
    monkeypatch.setenv("AFPE_TUNE_DIR", str(path))
    return path


def test_asha_stopped_trials_are_pruned_with_their_epochs(
    local_ray: None, postgres_url: str, private_artifact_dir: Path
) -> None:
    spec = validate_spec(
        {**TINY, "name": "asha", "n_trials": 8, "seed": 3, "scheduler": {"grace_period": 1, "reduction_factor": 2}}
    )
    summary = run_study(spec, storage=postgres_url)
    study = optuna.load_study(study_name="asha", storage=postgres_url)
    trials = study.trials
    states = [trial.state for trial in trials]
    assert len(trials) == 8 and summary.finished == 8
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert not {TrialState.RUNNING, TrialState.WAITING} & set(states)
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, trial.user_attrs["epochs"] + 1))
        assert {"s_rows", "s_cols"} == set(trial.params)
        assert all(0.05 <= value <= 20 for value in trial.params.values())
        attrs = trial.user_attrs
        assert (attrs["encoding"], attrs["task"], attrs["pe_seed"], attrs["seed"]) == ("afpe", "synthetic2d", 0, 3)
        assert attrs["ray_trial_id"] and attrs["seconds"] > 0
        if trial.state == TrialState.PRUNED:
            assert attrs["epochs"] < 3
            assert trial.value == trial.intermediate_values[steps[-1]]  # Optuna: a pruned trial's last value
        else:
            assert attrs["epochs"] == 3
            assert trial.value == max(trial.intermediate_values.values())  # the best epoch, not the last
    epochs = sum(trial.user_attrs["epochs"] for trial in trials)
    assert epochs < 8 * 3
    assert summary.best_value == max(t.value for t in trials if t.state == TrialState.COMPLETE)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    # the best trial's checkpoint is kept (written before the last report, on which ASHA stops it), no other
    assert [t.number for t in trials if trial_checkpoint(t)] == [best.number]
    assert [path.name for path in (private_artifact_dir / "asha").iterdir()] == [trial_checkpoint(best).artifact_id]


def test_a_trial_must_fit_on_one_alive_node_not_in_the_cluster_totals() -> None:
    gpu_node, cpu_node = {"CPU": 4.0, "GPU": 2.0}, {"CPU": 16.0}
    assert unplaceable(4, 0.5, [gpu_node, cpu_node]) is None and unplaceable(16, 0, [gpu_node, cpu_node]) is None
    assert "resources.cpus: each trial asks for 24 CPU but the largest Ray node has 16 (20 in a cluster" in str(
        unplaceable(24, 0, [gpu_node, cpu_node])
    )
    assert "resources.gpu: each trial asks for 1 GPU but the largest Ray node has 0" in str(
        unplaceable(1, 1, [cpu_node])
    )
    assert str(unplaceable(8, 1, [gpu_node, cpu_node])).startswith("resources.cpus and resources.gpu: ")
    assert "largest Ray node has 0 (0 in a cluster of 0 alive" in str(unplaceable(1, 0, []))


def test_resources_are_checked_against_the_nodes_of_the_running_ray(local_ray: None) -> None:
    check_resources(validate_spec({**TINY, "name": "fits"}))
    with pytest.raises(ValueError, match="resources.cpus: each trial asks for 256 CPU but the largest Ray node"):
        check_resources(validate_spec({**TINY, "name": "too-big", "resources": {"cpus": 256, "max_concurrent": 1}}))


def test_the_data_check_builds_the_dataset_cache_and_names_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFPE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    arrays = {
        f"{split}_{kind}": rng.integers(0, 255, (2, 28, 28, 28), np.uint8) if kind == "images" else np.zeros((2, 1))
        for split in ("train", "val")
        for kind in ("images", "labels")
    }
    np.savez(tmp_path / "organmnist3d.npz", **arrays)
    check_data("medmnist3d", {}, str(tmp_path))
    assert len(list((tmp_path / "cache").glob("medmnist3d/*/complete"))) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataRootError, match=r"^data_root: MedMNIST file .*/empty/organmnist3d.npz not found"):
        check_data("medmnist3d", {}, str(tmp_path / "empty"))


def test_a_node_that_cannot_read_the_data_stops_the_run_in_one_line(local_ray: None, tmp_path: Path) -> None:
    """On a cluster whose nodes alone see the data, the check runs there: Ray's traceback becomes one line."""
    (tmp_path / "empty").mkdir()
    spec = {**TINY, "name": "on-a-node", "task": "medmnist3d", "task_options": {}, "axes": AXES_3D}
    with pytest.raises(DataRootError) as refused:
        prepare_data(validate_spec({**spec, "data_root": str(tmp_path / "empty")}))
    assert str(refused.value).startswith("data_root: MedMNIST file ") and "\n" not in str(refused.value)


def test_a_failing_trial_is_retried_then_fails_without_stopping_the_study(
    local_ray: None, postgres_url: str, tmp_path: Path
) -> None:
    """A generated dataset too large for memory (30 TiB): a real error inside every trial, which the data check
    cannot see (it reads files only)."""
    spec = validate_spec(
        {
            **TINY,
            "name": "failing",
            "n_trials": 2,
            "task": "synthetic_video",
            "task_options": {"n_train": 1_000_000, "size": 512, "frames": 16, "patch": [4, 64, 64]},
            "axes": [
                {"name": "t", "grid_axes": [0], "low": 0.1, "high": 10},
                {"name": "xy", "grid_axes": [1, 2], "low": 0.1, "high": 10},
            ],
        }
    )
    summary = run_study(spec, storage=postgres_url)
    trials = optuna.load_study(study_name="failing", storage=postgres_url).trials
    assert [trial.state for trial in trials] == [TrialState.FAIL, TrialState.FAIL]  # both ran: the study went on
    assert summary.states["FAIL"] == 2 and summary.best_value is None
    for trial in trials:
        assert trial.user_attrs["retries"] == 1
        first, *tail = trial.user_attrs["error"].splitlines()
        assert re.match(r"_?(Array)?MemoryError: Unable to allocate 30.5 TiB", first) and tail  # cause, then tail


def test_a_terminated_postgres_backend_does_not_lose_the_study(
    local_ray: None, postgres_server: str, postgres_url: str, private_tune_dir: Path
) -> None:
    """After the first trial ends, every connection of the study's database is killed (pg_terminate_backend);
    the pool's pre-ping replaces them and the study goes on. The URL carries a password (trust auth ignores
    it): it must not appear anywhere in Ray's saved experiment state."""
    database = postgres_url.rsplit("/", 1)[1]
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    def terminate_backends(progress) -> None:  # noqa: ANN001 - afpe.search.run_reports.Progress
        if progress.finished == 1:
            with admin.connect() as connection:
                rows = connection.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            killed.append(len(rows))

    secret = "pw-never-in-ray-state"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")
    spec = validate_spec({**TINY, "name": "dropped", "n_trials": 3, "trainer": {**TINY["trainer"], "epochs": 2}})
    summary = run_study(spec, storage=url, on_progress=terminate_backends)
    admin.dispose()
    assert killed and killed[0] >= 1
    trials = optuna.load_study(study_name="dropped", storage=postgres_url).trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 3 and summary.finished == 3
    saved = [path for path in private_tune_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("experiment_state") for path in saved)
    assert not [path for path in saved if secret.encode() in path.read_bytes()]
