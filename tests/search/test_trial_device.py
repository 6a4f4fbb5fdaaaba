"""A trial trains on the device Ray granted it, recorded as user attrs `device` and `dtype` (and where: `host`,
`ray_node_id`): real studies on a private local Ray that advertises one GPU (a resource count, so the grant happens
on a CPU-only machine too)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from afpe.search import run_study, validate_spec
from afpe.search.testing import tiny_synthetic2d


@pytest.fixture(scope="module")
def ray_with_a_gpu() -> Iterator[None]:
    """One private local Ray for the module with `num_gpus=1` (run_study uses an initialised Ray as it is)."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="afpe-ray-", dir="/tmp")
    ray.init(_temp_dir=temp_dir, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def private_tune_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFPE_TUNE_DIR", str(tmp_path / "tune"))


def test_a_cpu_spec_records_device_cpu_on_every_trial(ray_with_a_gpu: None, postgres_url: str) -> None:
    """resources.gpu 0 on a node with a GPU: every trial trains on CPU in float32, repeats included, on the one
    node there is."""
    spec = validate_spec(
        tiny_synthetic2d(
            trainer={"epochs": 1}, name="cpu-trials", n_trials=2, repeats={"top_k": 1, "seeds": 1}, max_failures=0
        )
    )
    assert spec.resources.gpu == 0
    run_study(spec, storage=postgres_url)
    trials = optuna.load_study(study_name="cpu-trials", storage=postgres_url).trials
    assert len(trials) == 3 and all(trial.state == TrialState.COMPLETE for trial in trials)
    assert [(t.user_attrs["device"], t.user_attrs["dtype"]) for t in trials] == [("cpu", "float32")] * 3
    import ray

    here = (socket.gethostname(), ray.get_runtime_context().get_node_id())  # the one node of this Ray
    assert [(t.user_attrs["host"], t.user_attrs["ray_node_id"]) for t in trials] == [here] * 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch cannot use CUDA")
def test_a_trial_granted_a_gpu_torch_cannot_use_fails_instead_of_training_on_cpu(
    ray_with_a_gpu: None, postgres_url: str
) -> None:
    spec = validate_spec(
        tiny_synthetic2d(trainer={"epochs": 1}, name="gpu-trials", n_trials=1, max_failures=0, resources={"gpu": 1})
    )
    summary = run_study(spec, storage=postgres_url)
    (trial,) = optuna.load_study(study_name="gpu-trials", storage=postgres_url).trials
    assert trial.state == TrialState.FAIL and summary.states["FAIL"] == 1
    error = trial.user_attrs["error"]
    assert "DeviceError" in error and "granted GPU 0" in error and "refusing to train on CPU" in error
    assert "device" not in trial.user_attrs and trial.user_attrs["epochs"] == 0
