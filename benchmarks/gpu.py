"""The GPU path: throughput of trials through the driver against a plain loop, and what bf16 does to the objective.

1. trials/hour, per study spec (`--spec`, repeatable; default the quickstart): the same trials (the spec's seeded
   random draw of scales, `--trials` of `--epochs` epochs, no repeats) as a plain single-process loop of
   `afpe.trainers.train` (the reference) and through `afpe.search.run_study` on a private local Ray at several
   per-trial resources: `resources.gpu` 1, 0.5, 0.25, 0.125 with CUDA; `resources.cpus` 1, 2 on CPU (the GPU settings
   are skipped with a note). Ray's start is not counted. Prints each setting's trials/hour and its ratio to the
   plain loop, with the device and dtype the trials recorded, and the GPU utilisation (mean and peak over the
   node's GPUs) and peak GPU memory sampled from NVML (`nvidia-smi`, polled in a thread) while it ran: "n/a"
   without CUDA or nvidia-smi. `--data-root` is handed to specs that read a dataset; its cache is built first
   (not counted), e.g. `--spec msd-spleen-afpe --data-root ~/data/Task09_Spleen`.
2. precision: val_loss at fixed scales, float32 vs bf16, over `--repeats` seeds (a tiny synthetic2d): with CUDA,
   CPU float32 vs the GPU's bf16 autocast; without, CPU float32 vs CPU bf16 autocast (same cast rules for matmul).
   Prints the mean difference bf16 - fp32 against the noise floor (the seed-to-seed SD of fp32) and their ratio.

    python benchmarks/gpu.py [--spec quickstart] [--data-root DIR] [--trials 6] [--epochs 3] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass

import optuna
import torch

from afpe.search import run_study, validate_spec
from afpe.search.driver import base_train_config, ray_session
from afpe.search.samplers import make_sampler, search_distributions
from afpe.search.shipped_specs import spec_path
from afpe.search.spec import StudySpec
from afpe.search.spec_loading import load_spec
from afpe.search.testing import tiny_synthetic2d
from afpe.trainers import build_task, train

GPU_SHARES = (1.0, 0.5, 0.25, 0.125)
CPU_SHARES = (1, 2)
PRECISION_SCALES = ((1.0, 1.0), (10.0, 10.0), (50.0, 50.0))
HOUR = 3600.0


class GpuSampler:
    """GPU utilisation (%, mean over the node's GPUs) and memory used (MiB, summed) every `period` s from
    `nvidia-smi --query-gpu` (NVML) in a thread while the `with` block runs; nothing without CUDA or nvidia-smi."""

    QUERY = ("--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits")

    def __init__(self, period: float = 0.5) -> None:
        self.command = shutil.which("nvidia-smi") if torch.cuda.is_available() else None
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> GpuSampler:
        if self.command:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run([self.command, *self.QUERY], capture_output=True, text=True, timeout=30).stdout
            rows = []
            for line in out.splitlines():
                try:
                    rows.append([float(value) for value in line.split(",")])
                except ValueError:  # "[N/A]" (e.g. MIG instances)
                    continue
            if rows:
                self.samples.append((statistics.fmean(u for u, _ in rows), sum(m for _, m in rows)))
            self._stop.wait(self.period)

    def summary(self) -> str:
        if not self.samples:
            return "GPU n/a"
        utilisation = [u for u, _ in self.samples]
        return (
            f"GPU util {statistics.fmean(utilisation):.0f} % (peak {max(utilisation):.0f} %), memory peak "
            f"{max(m for _, m in self.samples):.0f} MiB"
        )


@dataclass(frozen=True)
class Throughput:
    label: str
    trials: int
    seconds: float
    devices: tuple[str, ...] = ()
    gpu: str = "GPU n/a"

    @property
    def per_hour(self) -> float:
        return self.trials / self.seconds * HOUR


def bench_spec(name: str, trials: int, epochs: int, resources: dict[str, float], data_root: str | None) -> StudySpec:
    """The spec `name` (a path or a shipped spec) cut to `trials` random trials of `epochs` epochs, no repeats,
    no scheduler, `resources` per trial (the spec's own GPU share dropped), as many at once as they fit."""
    overrides = [f"n_trials={trials}", f"trainer.epochs={epochs}", "repeats=null", "scheduler=null", "sampler=random"]
    overrides += ["resources.max_concurrent=null", "resources.gpu=0"]  # CPU unless `resources` gives a GPU share
    overrides += [f"resources.{key}={value}" for key, value in resources.items()]
    overrides += [f"data_root={data_root}"] if data_root else []
    path = spec_path(name)
    overrides.append(f"name=gpu-bench-{path.stem}-{'-'.join(f'{k}{v:g}' for k, v in resources.items())}")
    return load_spec(path, overrides)


def drawn_scales(spec: StudySpec) -> list[list[float]]:
    """The scales the driver's seeded random sampler draws for this spec, drawn the same way."""
    study = optuna.create_study(sampler=make_sampler(spec, offset=0), direction=spec.direction)
    distributions = search_distributions(spec)
    return [spec.scales_for(study.ask(distributions).params) for _ in range(spec.n_trials)]


def plain_loop(spec: StudySpec) -> Throughput:
    """The reference: every trial in this process, one after the other, on the default device (all cores)."""
    base = {**base_train_config(spec), "num_threads": None}
    started = time.perf_counter()
    with GpuSampler() as gpu:
        for scales in drawn_scales(spec):
            train({**base, "scales": scales})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Throughput("plain loop", spec.n_trials, time.perf_counter() - started, (device,), gpu.summary())


def through_driver(spec: StudySpec, resources: dict[str, float], folder: str) -> Throughput:
    """The same trials through `run_study` (Ray must be initialised)."""
    storage = f"sqlite:///{folder}/{spec.name}.db"
    started = time.perf_counter()
    with GpuSampler() as gpu:
        run_study(spec, storage=storage)
    seconds = time.perf_counter() - started
    recorded = optuna.load_study(study_name=spec.name, storage=storage).trials
    devices = tuple(sorted({f"{t.user_attrs.get('device')}/{t.user_attrs.get('dtype')}" for t in recorded}))
    label = ", ".join(f"resources.{key} {value:g}" for key, value in resources.items())
    return Throughput(label, spec.n_trials, seconds, devices, gpu.summary())


def throughput(name: str, trials: int, epochs: int, data_root: str | None) -> None:
    on_gpu = torch.cuda.is_available()
    settings = [{"cpus": 1, "gpu": share} for share in GPU_SHARES] if on_gpu else [{"cpus": c} for c in CPU_SHARES]
    reference_spec = bench_spec(name, trials, epochs, {"cpus": 1}, data_root)
    print(f"throughput: {trials} trials of {epochs} epochs, spec {name} (task {reference_spec.task})")
    if not on_gpu:
        print(f"  no CUDA here: resources.gpu {', '.join(map(str, GPU_SHARES))} skipped; CPU shares instead")
    started = time.perf_counter()
    build_task(reference_spec.task, reference_spec.task_options, reference_spec.resolved_data_root()).prepare()
    print(f"  (dataset cache built in {time.perf_counter() - started:.1f} s, not counted)")
    reference = plain_loop(reference_spec)
    with tempfile.TemporaryDirectory(prefix="afpe-gpu-bench-") as folder:
        os.environ["AFPE_TUNE_DIR"] = os.path.join(folder, "tune")
        started = time.perf_counter()
        with ray_session(None):
            print(f"  (Ray start {time.perf_counter() - started:.1f} s, not counted)")
            results = [through_driver(bench_spec(name, trials, epochs, r, data_root), r, folder) for r in settings]
    for result in [reference, *results]:
        print(
            f"  {result.label:<34} {result.per_hour:8.0f} trials/h  x{result.per_hour / reference.per_hour:.2f} "
            f"of the plain loop  ({result.seconds:.1f} s; {', '.join(result.devices)}; {result.gpu})"
        )


def precision_spec(epochs: int) -> StudySpec:
    """A tiny synthetic2d search (512 training images): the precision comparison's model and data."""
    return validate_spec(
        tiny_synthetic2d(trainer={"epochs": epochs}, name="gpu-bench", task_options={"n_train": 512, "n_val": 128})
    )


def val_loss(scales: tuple[float, float], seed: int, epochs: int, device: str, bf16_on_cpu: bool) -> float:
    """Best-epoch val_loss of one training at fixed `scales`; `bf16_on_cpu` trains under CPU bf16 autocast."""
    config = {
        **base_train_config(precision_spec(epochs)),
        "num_threads": None,
        "scales": list(scales),
        "seed": seed,
        "device": device,
        "metric": "val_loss",
    }
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16_on_cpu else nullcontext():
        return train(config)["objective"]


def precision(scales: tuple[float, float], repeats: int, epochs: int) -> None:
    on_gpu = torch.cuda.is_available()
    fp32 = [val_loss(scales, seed, epochs, "cpu", False) for seed in range(repeats)]
    bf16 = [val_loss(scales, seed, epochs, "cuda" if on_gpu else "cpu", not on_gpu) for seed in range(repeats)]
    difference = statistics.fmean(b - f for b, f in zip(bf16, fp32, strict=True))
    noise = statistics.stdev(fp32) if repeats > 1 else float("nan")
    print(
        f"  scales {scales}: fp32 val_loss {statistics.fmean(fp32):.4f}, {'GPU' if on_gpu else 'CPU'} bf16 "
        f"{statistics.fmean(bf16):.4f}, difference {difference:+.4f}, noise floor (fp32 SD over {repeats} seeds) "
        f"{noise:.4f}, |difference| / noise {abs(difference) / noise:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", action="append", help="study spec (path or shipped name); repeatable")
    parser.add_argument("--data-root", help="dataset folder for specs that read one")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 trials of 1 epoch, 2 repeats at one scale (tests)")
    args = parser.parse_args()
    trials, epochs, repeats, scales = args.trials, args.epochs, args.repeats, PRECISION_SCALES
    if args.quick:
        trials, epochs, repeats, scales = 2, 1, 2, PRECISION_SCALES[-1:]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    on_gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA {'available' if on_gpu else 'not available'}, {os.cpu_count()} cores")
    for name in args.spec or ["quickstart"]:
        throughput(name, trials, epochs, args.data_root)

    print(f"precision: best-epoch val_loss, {epochs} epochs, seeds 0..{repeats - 1}")
    for pair in scales:
        precision(pair, repeats, epochs)


if __name__ == "__main__":
    main()
