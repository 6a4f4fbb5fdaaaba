"""The figures' arithmetic (ICC(1), calibration CI and score), a short real run of the calibration sweep and of
the GPU-path benchmark in its smallest mode."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


convergence, calibration = load("convergence"), load("calibration")


def test_icc_is_one_without_seed_noise_and_near_zero_when_seeds_dominate() -> None:
    exact = np.repeat(np.arange(8.0)[:, None], 3, axis=1)
    assert convergence.icc1(exact) == (1.0, 0.0, pytest.approx(np.arange(8.0).std(ddof=1)))
    noise = np.random.default_rng(0).normal(size=(200, 3))
    icc, within, between = convergence.icc1(noise + 0.01 * np.arange(200.0)[:, None] / 200)
    assert abs(icc) < 0.1 and within == pytest.approx(1.0, abs=0.1) and between < 0.2
    # one configuration effect of SD 2 against seed noise of SD 1: ICC = 4 / (4 + 1)
    mixed = np.random.default_rng(1).normal(0, 2, (400, 1)) + np.random.default_rng(2).normal(size=(400, 3))
    assert convergence.icc1(mixed)[0] == pytest.approx(0.8, abs=0.05)
    with pytest.raises(ValueError, match="2 configurations"):
        convergence.icc1(np.ones((1, 3)))


def test_the_icc_interval_covers_the_true_icc_about_95_times_in_100() -> None:
    """Configuration effects of SD 2 and seed noise of SD 1 (true ICC 0.8), 8 configurations x 3 seeds as
    convergence.py measures: the interval holds 0.8 in 95 % of 2000 draws (binomial SD 0.5 %)."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(2000):
        values = rng.normal(0, 2, (8, 1)) + rng.normal(size=(8, 3))
        low, high = convergence.icc1_interval(values)
        assert low <= convergence.icc1(values)[0] <= high
        hits += low <= 0.8 <= high
    assert 0.93 <= hits / 2000 <= 0.97
    assert all(math.isnan(x) for x in convergence.icc1_interval(np.repeat(np.arange(8.0)[:, None], 3, axis=1)))


def test_calibration_ratio_ci_and_score() -> None:
    exact = calibration.Calibration((0.2, 0.4), 0.5, found=[0.5, 0.5, 0.5], values=[1, 1, 1])
    assert exact.ratio == pytest.approx(0.5) and exact.ci == pytest.approx((0.5, 0.5)) and exact.within_2x
    off = calibration.Calibration((0.4, 0.2), 2.0, found=[8.0, 4.0, 16.0], values=[1, 1, 1])
    low, high = off.ci
    assert off.ratio == pytest.approx(8.0) and low < 8.0 < high and not off.within_2x
    assert calibration.spearman([exact, off]) == pytest.approx(1.0)
    assert math.isnan(calibration.spearman([exact]))


def test_calibration_sweep_runs_real_searches() -> None:
    """Two seeds x two 1-epoch trials on a tiny field: too few trials for a surface, so the smoothed answer
    falls back to the best trial's ratio; draws are seeded."""
    task = {"n_train": 64, "n_val": 32}
    smoothed, first = calibration.calibrate([(0.3, 0.3)], trials=2, seeds=2, epochs=1, task=task)
    _, again = calibration.calibrate([(0.3, 0.3)], trials=2, seeds=2, epochs=1, task=task)
    assert (smoothed.answer, first.answer) == ("smoothed", "best trial") and smoothed.found == first.found
    assert first.predicted == 1.0 and len(first.found) == 2 and first.found == again.found
    assert all(1 / 400 <= ratio <= 400 for ratio in first.found), "a ratio of two scales in [0.05, 20]"
    assert first.found[0] != first.found[1], "each seed draws its own trials"
    assert all(math.isfinite(v) for v in first.values) and first.values == again.values


def test_gpu_benchmark_runs_in_its_smallest_mode(tmp_path: Path) -> None:
    """On a machine without CUDA: the plain loop and the driver at two CPU shares, every trial recorded on CPU in
    float32, and a finite bf16 - fp32 difference under CPU bf16 autocast."""
    import torch

    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rates = re.findall(
        r"^  (plain loop|resources\.cpus \d|resources\.cpus 1, resources\.gpu [\d.]+) +(\d+) trials/h", out, re.M
    )
    if torch.cuda.is_available():
        assert [label for label, _ in rates][1:] == [
            f"resources.cpus 1, resources.gpu {g}" for g in ("1", "0.5", "0.25", "0.125")
        ]
        assert re.search(r"GPU util \d+ % \(peak \d+ %\), memory peak \d+ MiB", out)
    else:
        assert "resources.gpu 1.0, 0.5, 0.25, 0.125 skipped" in out
        assert [label for label, _ in rates] == ["plain loop", "resources.cpus 1", "resources.cpus 2"]
        assert out.count("cpu/float32") == 2
        assert out.count("; GPU n/a)") == 3, "no GPU utilisation to sample here"
    assert all(int(rate) > 0 for _, rate in rates)
    (line,) = [line for line in out.splitlines() if line.startswith("  scales (50.0, 50.0)")]
    assert re.search(r"difference [+-]\d+\.\d{4}", line), line


def test_cache_memory_benchmark_runs_and_its_streamed_cache_equals_the_whole_decode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cache_memory.py"), "--videos", "4", "--frames", "6"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"streamed into the cache: +peak +[\d.]+ MiB +ratio \d+\.\d{3}$", result.stdout, re.M)
