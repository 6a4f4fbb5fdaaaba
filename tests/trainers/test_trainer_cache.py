"""The dataset cache: concurrent requests for one entry decode once (a file lock), and a task's `prepare`
builds its entry so trials only read it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from afpe.trainers import build_task
from afpe.trainers.tasks.cache import cached_arrays


def test_concurrent_requests_for_one_entry_call_the_builder_once(tmp_path: Path, cache_dir: Path) -> None:
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


def test_row_blocks_are_written_as_they_come_into_one_array(tmp_path: Path, cache_dir: Path) -> None:
    source = tmp_path / "videos.bin"
    source.write_bytes(b"raw")
    videos = [np.full((n, 2, 3), n, dtype=np.uint8) for n in (3, 1, 4)]
    lengths: list[int] = []

    def frames():
        for video in videos:
            lengths.append(len(video))
            yield video

    def build():
        yield "frames", frames()
        yield "offsets", np.cumsum([0, *lengths])  # known only once the frames were written

    arrays = cached_arrays("videos", [source], {}, build)
    assert np.array_equal(arrays["frames"], np.concatenate(videos)) and isinstance(arrays["frames"], np.memmap)
    assert arrays["offsets"].tolist() == [0, 3, 4, 8]
    assert not list(cache_dir.glob("videos/*/*.raw"))

    unlike = [np.zeros((1, 2), np.uint8), np.zeros((1, 3), np.uint8)]
    with pytest.raises(ValueError, match="a block of uint8 \\(3,\\) after uint8 rows"):
        cached_arrays("videos", [source], {"unlike": True}, lambda: {"frames": iter(unlike)})
    assert len(list(cache_dir.glob("videos/*/complete"))) == 1  # the failed build left no entry
