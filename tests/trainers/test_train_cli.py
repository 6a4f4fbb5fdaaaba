"""`afpe train` as a user runs it (subprocess): --json summary, progress bar, and exit 2 without a
traceback on bad input or data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TINY = ["--epochs", "1", "--limit", "16", "--batch-size", "8", "--threads", "2"]


def afpe(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "AFPE_CACHE_DIR": str(env_cache)}
    return subprocess.run(
        [sys.executable, "-m", "afpe.service", "train", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_json_summary_is_the_last_stdout_line(cache_dir: Path) -> None:
    run = afpe(
        "--task",
        "synthetic3d",
        "--encoding",
        "afpe",
        "--scales",
        "1,1,0.25",
        "--option",
        "anisotropy=1,1,4",
        "--option",
        "n_train=16",
        "--option",
        "n_val=16",
        "--json",
        *TINY,
        env_cache=cache_dir,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["task"] == "synthetic3d" and summary["encoding"] == "afpe" and summary["epochs"] == 1
    assert summary["scales"] == [1.0, 1.0, 0.25]
    assert set(summary["metrics"]) == {"accuracy", "auroc", "val_loss", "train_loss"}


def test_progress_bar_and_a_real_dataset_root(echonet_root: Path, cache_dir: Path) -> None:
    run = afpe(
        "--task",
        "echonet",
        "--encoding",
        "sincos",
        "--data-root",
        str(echonet_root),
        "--option",
        "size=32",
        *TINY,
        env_cache=cache_dir,
    )
    assert run.returncode == 0, run.stderr
    assert "echonet/sincos" in run.stderr and "epoch" in run.stderr, "tqdm bar on stderr"
    assert "best epoch 1/1 (r2 =" in run.stdout and "rmse" in run.stdout


def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path: Path, cache_dir: Path) -> None:
    cases = [
        (["--task", "ct"], "unknown task 'ct'"),
        (["--task", "synthetic2d", "--option", "anisotropy"], "--option expects KEY=VALUE"),
        (["--task", "synthetic2d", "--scales", "1,x"], "comma-separated list of floats"),
        (["--task", "synthetic2d", "--epochs", "0"], "epochs: Input should be greater than or equal to 1"),
        (["--task", "medmnist3d", "--data-root", str(tmp_path)], f"MedMNIST file {tmp_path / 'organmnist3d.npz'}"),
        (["--task", "chestx"], "set data_root (--data-root DIR)"),
    ]
    for args, message in cases:
        run = afpe(*TINY, *args, env_cache=cache_dir)
        assert run.returncode == 2, (args, run.stderr)
        assert "Traceback" not in run.stderr and message in run.stderr, (args, run.stderr)
        assert run.stderr.strip().splitlines()[-1].startswith("afpe: error:")
