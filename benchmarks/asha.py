"""ASHA vs none: the same 50 random scale draws (same seed) on a synthetic task, once run to the end and once
with ASHA; prints the best value and the epochs each spent. Goal: the same best within noise at <= 40 %
of the epochs.

    python benchmarks/asha.py [--trials 50] [--epochs 15] [--grace 2] [--rf 4] [--metric val_loss] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import optuna

from afpe.search import run_study, validate_spec
from afpe.search.driver import ray_session
from afpe.search.storage import open_storage
from afpe.search.testing import rows_cols_axes

SPEC = {
    "task": "synthetic2d",
    "task_options": {"n_train": 512, "n_val": 256},
    "encoding": "afpe",
    "axes": rows_cols_axes(0.02, 50),
    "trainer": {"batch_size": 32, "lr": 0.003, "warmup_epochs": 0.5, "model": {"dim": 32, "depth": 2, "heads": 4}},
    "resources": {"cpus": 1, "max_concurrent": 2},
    "seed": 7,
}


def rank_correlation(study: optuna.Study, step: int) -> float:
    """Spearman correlation, over complete trials, of the value at epoch `step` with the trial's value."""
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and step in t.intermediate_values]
    early = np.argsort(np.argsort([t.intermediate_values[step] for t in trials]))
    final = np.argsort(np.argsort([t.value for t in trials]))
    return float(np.corrcoef(early, final)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--grace", type=int, default=2, help="ASHA grace period (epochs)")
    parser.add_argument("--rf", type=float, default=4.0, help="ASHA reduction factor")
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--quick", action="store_true", help="4 trials of 2 epochs on 64 samples, grace 1 (tests)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quick = {"task_options": {"n_train": 64, "n_val": 32}} if args.quick else {}
    if args.quick:
        args.trials, args.epochs, args.grace = 4, 2, 1
    base = {
        **SPEC,
        **quick,
        "n_trials": args.trials,
        "metric": args.metric,
        "trainer": {**SPEC["trainer"], "epochs": args.epochs},
    }
    runs = {
        "random": validate_spec({**base, "name": "random"}),
        "random+asha": validate_spec(
            {**base, "name": "random-asha", "scheduler": {"grace_period": args.grace, "reduction_factor": args.rf}}
        ),
    }
    with tempfile.TemporaryDirectory(prefix="afpe-bench-") as folder:
        os.environ["AFPE_TUNE_DIR"] = f"{folder}/tune"
        storage_url = f"sqlite:///{folder}/asha.db"
        figures = {}
        with ray_session(None):
            for label, spec in runs.items():
                started = time.perf_counter()
                summary = run_study(spec, storage=storage_url)
                seconds = time.perf_counter() - started
                study = optuna.load_study(study_name=spec.name, storage=open_storage(storage_url))
                epochs = sum(trial.user_attrs.get("epochs", 0) for trial in study.trials)
                same_draws = [tuple(sorted(trial.params.items())) for trial in study.trials]
                figures[label] = (summary, epochs, seconds, same_draws)
                if label == "random":
                    steps = sorted({1, 2, args.grace, args.epochs // 2})
                    early = {step: rank_correlation(study, step) for step in steps}
    (plain, plain_epochs, plain_s, plain_draws), (asha, asha_epochs, asha_s, asha_draws) = figures.values()
    print(f"task synthetic2d, {args.trials} random trials x {args.epochs} epochs, metric {plain.metric}")
    print(f"same scale draws in both runs: {sorted(plain_draws) == sorted(asha_draws)}")
    print(
        "rank correlation of epoch-k value with the trial's best (random run): "
        + ", ".join(f"k={step}: {rho:.2f}" for step, rho in sorted(early.items()))
    )
    for label, (summary, epochs, seconds, _) in figures.items():
        print(
            f"{label:12s} best {summary.best_value:.4f} (trial {summary.best_number}), epochs {epochs}, "
            f"{seconds:.0f} s, states { ({k: v for k, v in summary.states.items() if v}) }"
        )
    print(
        f"ASHA: best {asha.best_value - plain.best_value:+.4f} vs random, "
        f"epochs {asha_epochs / plain_epochs:.0%} of random, wall {asha_s / plain_s:.0%}   [goal <= 40% epochs]"
    )


if __name__ == "__main__":
    main()
