"""The dataset cache: concurrent requests for one entry decode once (a file lock), and a task's `prepare`
builds its entry so trials only read it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from afpe.trainers import build_task
from afpe.trainers.tasks.cache import cached_arrays


def test_concurrent_requests_for_one_entry_call_the_builder_once(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"raw")
    calls: list[int] = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        time.sleep(0.3)  # long enough for the other requests to arrive while it builds
        return {"pixels": np.arange(6, dtype=np.uint8)}

    results: list[dict[str, np.ndarray]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cached_arrays("demo", [source], {"size": 2}, build)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 3
    assert all(np.array_equal(arrays["pixels"], np.arange(6)) for arrays in results)


def test_prepare_builds_the_cache_of_a_file_task_and_nothing_for_a_generated_one(
    medmnist_root: Path, cache_dir: Path
) -> None:
    build_task("synthetic2d", {"n_train": 4, "n_val": 2}).prepare()
    assert not cache_dir.exists()
    build_task("medmnist3d", {}, medmnist_root).prepare()
    assert len(list(cache_dir.glob("medmnist3d/*/complete"))) == 1
