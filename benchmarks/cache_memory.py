"""Peak memory of building a dataset cache: EchoNet's decoder streamed into the cache a video at a time
(`trainers/tasks/cache.py`) against the reference, the whole split decoded then concatenated (the build before
streaming: every video and their concatenation in memory at once), in the same process on the same videos.

Peak = the largest traced allocation total (numpy reports its buffers to tracemalloc) while each build runs.
Goal: the streamed build's peak stays near a few videos, whatever the split's size (ratio << 1).

    python benchmarks/cache_memory.py [--videos 48] [--frames 120]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from afpe.trainers.tasks.cache import cached_arrays
from afpe.trainers.tasks.echonet import _decode, _read_video

SIZE = 112


def write_videos(folder: Path, videos: int, frames: int) -> list[Path]:
    """`videos` MJPG AVIs of `frames` grey 112 x 112 frames, as EchoNet ships them."""
    paths = []
    for index in range(videos):
        path = folder / f"video{index:03d}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50, (SIZE, SIZE))
        for frame in range(frames):
            writer.write(np.full((SIZE, SIZE, 3), (index * 7 + frame) % 255, np.uint8))
        writer.release()
        paths.append(path)
    return paths


def peak_mib(build) -> tuple[float, object]:  # noqa: ANN001 - a no-argument callable
    tracemalloc.start()
    result = build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, result


def whole_split(paths: list[Path]) -> np.ndarray:
    """The reference: every video decoded, then one concatenated copy."""
    with ThreadPoolExecutor() as pool:
        return np.concatenate(list(pool.map(lambda path: _read_video(path, SIZE), paths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["AFPE_CACHE_DIR"] = str(Path(folder) / "cache")
        paths = write_videos(Path(folder), args.videos, args.frames)
        reference, frames = peak_mib(lambda: whole_split(paths))
        streamed, arrays = peak_mib(
            lambda: cached_arrays("echonet", paths, {"size": SIZE}, lambda: _decode(paths, SIZE))
        )
        assert np.array_equal(arrays["frames"], frames), "the streamed cache differs from the whole decode"
    print(f"{args.videos} videos x {args.frames} frames of {SIZE}x{SIZE}: {frames.nbytes / 2**20:.0f} MiB decoded")
    print(f"  reference (decode all, concatenate): peak {reference:7.1f} MiB")
    print(f"  streamed into the cache:             peak {streamed:7.1f} MiB  ratio {streamed / reference:.3f}")


if __name__ == "__main__":
    main()
