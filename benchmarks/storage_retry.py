"""Overhead of the storage retry path when nothing fails: seconds per storage write (an intermediate value, the
recorder's one write per epoch) made directly vs through `StorageGuard.write`, and per read (`get_all_trials`)
directly vs through `StorageGuard.call`, measured in the same process on the same study, in alternating rounds.

    python benchmarks/storage_retry.py [--storage URL] [--calls 400] [--rounds 5]

Default storage: a SQLite file in a temp dir; pass a PostgreSQL URL to measure it there (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution

from afpe.search.outage import StorageGuard
from afpe.search.storage import open_storage
from afpe.search.trial_writes import set_intermediate_value
from afpe.search.trial_writes import trial_id as storage_id


def per_call(calls: int, call: Callable[[int], object]) -> float:
    """Seconds per call of `call(i)` over `calls` calls."""
    started = time.perf_counter()
    for i in range(calls):
        call(i)
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="database URL (default: a temp SQLite file)")
    parser.add_argument("--calls", type=int, default=400, help="storage calls per round and path")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="20 calls x 1 round (tests)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 20, 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = args.storage or f"sqlite:///{Path(tempfile.mkdtemp(prefix='afpe-bench-')) / 'bench.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name=f"retry-bench-{time.time_ns()}")
    trial = study.ask({"s_x": FloatDistribution(0.1, 10, log=True)})
    optuna_id = storage_id(trial)
    guard = StorageGuard("bench")
    paths = {
        "write": (
            lambda i: set_intermediate_value(study, optuna_id, i, 0.5),
            lambda i: guard.write(partial(set_intermediate_value, study, optuna_id, i, 0.5)),
        ),
        "read": (
            lambda i: study.get_trials(deepcopy=False),
            lambda i: guard.call(lambda: study.get_trials(deepcopy=False)),
        ),
    }
    print(f"storage: {url.split('@')[-1]}, {args.calls} calls x {args.rounds} rounds per path")
    for kind, (plain, guarded) in paths.items():
        bare, wrapped = [], []
        for _ in range(args.rounds):
            bare.append(per_call(args.calls, plain))
            wrapped.append(per_call(args.calls, guarded))
        direct, retried = statistics.median(bare), statistics.median(wrapped)
        print(
            f"{kind}: direct {direct * 1e3:.3f} ms/call, through the retry path {retried * 1e3:.3f} ms/call, "
            f"ratio {retried / direct:.3f}"
        )


if __name__ == "__main__":
    main()
