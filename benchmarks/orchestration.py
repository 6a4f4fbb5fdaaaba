"""Orchestration overhead: the same tiny training objective as a plain sequential Optuna loop on PostgreSQL
vs through `afpe.search.run_study` (local Ray Tune, one trial at a time, recorded in PostgreSQL).

Prints the per-trial overhead (median interval between trial ends through the driver minus the median
plain trial, after warm-up) and the total-time ratio, with and without Ray's start.
Goals: <= 0.5 s overhead per trial, <= 1.15x total on 20+ trials.

    python benchmarks/orchestration.py [--trials 20] [--epochs 3] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import optuna

from afpe.search import run_study, validate_spec
from afpe.search.driver import base_train_config, ray_session
from afpe.search.samplers import search_distributions
from afpe.search.testing import postgres_database, rows_cols_axes
from afpe.trainers import train

WARM_UP = 2
SPEC = {
    "task": "synthetic2d",
    "task_options": {"n_train": 512, "n_val": 128},
    "encoding": "afpe",
    "axes": rows_cols_axes(0.05, 20),
    "trainer": {"epochs": 3, "batch_size": 32, "warmup_epochs": 0, "model": {"dim": 32, "depth": 2, "heads": 4}},
    "resources": {"cpus": 1, "max_concurrent": 1},
}


def durations(study: optuna.Study) -> list[float]:
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials]


def intervals(study: optuna.Study) -> list[float]:
    """Seconds between consecutive trial ends (a sequential run: one trial's full cost incl. orchestration)."""
    ends = sorted(t.datetime_complete for t in study.trials)
    return [(later - earlier).total_seconds() for earlier, later in zip(ends, ends[1:], strict=False)]


def plain_loop(spec, url: str) -> tuple[float, optuna.Study]:  # noqa: ANN001
    base = base_train_config(spec)
    study = optuna.create_study(
        study_name="plain", storage=url, direction=spec.direction, sampler=optuna.samplers.RandomSampler(seed=spec.seed)
    )
    distributions = search_distributions(spec)

    def objective(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_float(name, d.low, d.high, log=True) for name, d in distributions.items()}
        return train({**base, "scales": spec.scales_for(params)})["objective"]

    started = time.perf_counter()
    study.optimize(objective, n_trials=spec.n_trials)
    return time.perf_counter() - started, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial: the objective's length")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--quick", action="store_true", help=f"{WARM_UP + 2} trials of 1 epoch on 64 samples (tests)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quick = {"task_options": {"n_train": 64, "n_val": 32}} if args.quick else {}
    if args.quick:
        args.trials, args.epochs = WARM_UP + 2, 1
    spec = validate_spec(
        {
            **SPEC,
            **quick,
            "name": "driven",
            "n_trials": args.trials,
            "trainer": {**SPEC["trainer"], "epochs": args.epochs},
        }
    )
    train({**base_train_config(spec), "scales": [1.0, 1.0], "epochs": 1})  # warm imports and caches for both

    with postgres_database(args.postgres, prefix="afpe_bench") as url:
        plain_total, plain = plain_loop(spec, url)
        with tempfile.TemporaryDirectory(prefix="afpe-bench-") as tune_dir:
            os.environ["AFPE_TUNE_DIR"] = tune_dir
            started = time.perf_counter()
            with ray_session(None):
                ray_started = time.perf_counter() - started
                run_study(spec, storage=url)
            driver_total = time.perf_counter() - started
        driven = optuna.load_study(study_name="driven", storage=url)
        plain_trial = statistics.median(durations(plain)[WARM_UP:])
        driven_interval = statistics.median(intervals(driven)[WARM_UP:])
        driven_trial = statistics.median(durations(driven)[WARM_UP:])
    overhead = driven_interval - plain_trial
    print(f"trials: {args.trials} sequential; objective: synthetic2d (512 samples), {args.epochs} epochs, small ViT")
    print(f"plain Optuna loop on PostgreSQL: total {plain_total:.1f} s, median trial {plain_trial:.2f} s")
    print(
        f"afpe driver (Ray Tune + Optuna on PostgreSQL): total {driver_total:.1f} s "
        f"(Ray start {ray_started:.1f} s), median interval between trial ends {driven_interval:.2f} s, "
        f"median trial as recorded {driven_trial:.2f} s"
    )
    print(f"per-trial overhead (median, after {WARM_UP} warm-up trials): {overhead:+.3f} s   [goal <= 0.5 s]")
    print(
        f"total-time ratio driver/plain: {driver_total / plain_total:.3f}x including Ray start, "
        f"{(driver_total - ray_started) / plain_total:.3f}x without   [goal <= 1.15x]"
    )


if __name__ == "__main__":
    main()
