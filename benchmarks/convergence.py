"""Is a configuration's result decided by its scales or by its seed? ICC(1) of the objective over fixed
AFPE scale configurations spanning the quickstart range x seeds (`seed` and `pe_seed` both varied).

One-way random effects over k configurations x n seeds, y_ij the objective of configuration i, seed j:
    MSB = n sum_i (mean_i - mean)^2 / (k - 1),  MSW = sum_ij (y_ij - mean_i)^2 / (k (n - 1))
    ICC(1) = (MSB - MSW) / (MSB + (n - 1) MSW)
    within SD = sqrt(MSW),  between SD = sqrt(max(0, MSB - MSW) / n)  (the configuration effect's SD)
Goal: ICC >= 0.8. Trainer settings come from a spec (default studies/quickstart.yaml); `--before` uses
the quickstart as it shipped before issue 11 (orthant label, 10 epochs at lr 3e-3). Measured on 2 shared
cores: shipped ICC 0.375 (within SD 0.45, between 0.35); `target: centre`, 15 epochs, n_val 256: ICC 0.237
(within 0.023, between 0.013; 11 of 24 runs never left the constant prediction), so it was not adopted;
mean pooling without a CLS token (predicted to raise the ICC): ICC 0.058 (within 0.11, between 0.027; 22 of 24
runs stayed at chance, ln 8 = 2.08), not adopted either. The quickstart of 16^3 voxels (4x4x4 tokens), 1024
samples, batch 16: ICC 0.541 (within SD 0.49, between 0.53; 236 s with 2 workers at load ~4): better, still
short of 0.8 (in 4 of the 6 configurations that can learn, 1 or 2 seeds of 3 end above val_loss 0.9).

    python benchmarks/convergence.py [--before] [--spec studies/quickstart.yaml] [--seeds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np

from afpe.search import load_spec
from afpe.search.driver import base_train_config
from afpe.trainers import train

QUICKSTART = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"

#: (s_xy, s_z): log-spaced over the quickstart range [0.01, 10] per axis group, ratios 1/30 .. 30.
CONFIGS = [(0.01, 0.01), (0.03, 1.0), (0.1, 0.3), (0.3, 0.1), (0.3, 3.0), (1.0, 1.0), (3.0, 0.3), (10.0, 10.0)]

#: The quickstart's task and trainer before issue 11 (commit 8599334).
BEFORE = {
    "task": "synthetic3d",
    "task_options": {"anisotropy": [1, 1, 4], "n_train": 512, "n_val": 128},
    "encoding": "afpe",
    "metric": "val_loss",
    "epochs": 10,
    "batch_size": 32,
    "lr": 0.003,
    "warmup_epochs": 1,
    "model": {"dim": 48, "depth": 2, "heads": 4, "mlp_ratio": 2.0},
}


def icc1(values: np.ndarray) -> tuple[float, float, float]:
    """(ICC(1), within SD, between SD) of a (configurations, seeds) array; raises ValueError below 2 x 2."""
    k, n = values.shape
    if k < 2 or n < 2:
        raise ValueError(f"ICC needs >= 2 configurations x >= 2 seeds, got {k} x {n}")
    means = values.mean(axis=1)
    msb = n * ((means - values.mean()) ** 2).sum() / (k - 1)
    msw = ((values - means[:, None]) ** 2).sum() / (k * (n - 1))
    return float((msb - msw) / (msb + (n - 1) * msw)), float(np.sqrt(msw)), float(np.sqrt(max(0.0, msb - msw) / n))


def _run(job: tuple[dict[str, Any], tuple[float, float], int]) -> float:
    base, (s_xy, s_z), seed = job
    config = {**base, "scales": [s_xy, s_xy, s_z], "seed": seed, "pe_seed": seed, "num_threads": 1}
    return float(train(config)["objective"])


def measure(base: dict[str, Any], seeds: int, workers: int) -> np.ndarray:
    """Objective of every configuration x seed, (len(CONFIGS), seeds), run `workers` at a time (1 thread each)."""
    jobs = [(base, config, seed) for config in CONFIGS for seed in range(seeds)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return np.array(pool.map(_run, jobs, chunksize=1)).reshape(len(CONFIGS), seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="the quickstart's settings before issue 11")
    parser.add_argument("--spec", default=str(QUICKSTART), help="study spec whose task and trainer are measured")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = BEFORE if args.before else base_train_config(load_spec(args.spec))
    base = {key: value for key, value in base.items() if key not in ("seed", "pe_seed", "num_threads")}
    started = time.perf_counter()
    values = measure(base, args.seeds, args.workers)
    seconds = time.perf_counter() - started
    print(
        f"{'before (shipped quickstart)' if args.before else args.spec}: task {base['task']} "
        f"{base['task_options']}, {base['epochs']} epochs, metric {base['metric']}"
    )
    for (s_xy, s_z), row in zip(CONFIGS, values, strict=True):
        print(
            f"  s_xy {s_xy:<5g} s_z {s_z:<5g} ratio {s_z / s_xy:<7.3g} "
            + " ".join(f"{v:.4f}" for v in row)
            + f"   mean {row.mean():.4f} sd {row.std(ddof=1):.4f}"
        )
    icc, within, between = icc1(values)
    print(
        f"ICC(1) = {icc:.3f}   within-configuration SD {within:.4f}   between-configuration SD {between:.4f}   "
        f"({len(CONFIGS)} configurations x {args.seeds} seeds, {seconds:.0f} s with {args.workers} workers)"
    )


if __name__ == "__main__":
    main()
