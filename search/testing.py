"""Helpers of the tests and benchmarks: spec pieces, trials written with the layout the search records
(params `s_<axis>`, the standard user attrs, one intermediate value per epoch) without running anything,
a throw-away PostgreSQL database, and a private PostgreSQL server to stop and restart."""

from __future__ import annotations

import glob
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from afpe.search.priors import PRIOR_KEY
from afpe.search.spec import PARAM_PREFIX, SearchSpace

#: A shipped campaign made small (`--set` overrides of its base): one trial of one epoch per study, a baseline
#: trained with its seed and one more.
TINY_CAMPAIGN_OVERRIDES = [
    "n_trials=1",
    "repeats.top_k=1",
    "repeats.seeds=1",
    "trainer.epochs=1",
    "task_options.n_train=16",
    "task_options.n_val=4",
    "trainer.model.dim=12",
    "trainer.model.depth=1",
]


def rows_cols_axes(low: float, high: float) -> list[dict[str, Any]]:
    """The two searched axes of a 2-D task: `rows` (grid axis 0) and `cols` (grid axis 1) over [low, high]."""
    return [{"name": name, "grid_axes": [axis], "low": low, "high": high} for axis, name in enumerate(("rows", "cols"))]


def quickstart_space(**fields: Any) -> dict[str, Any]:
    """A stored spec dict with the quickstart's search space: d0, d1 of synthetic3d_field's 8x8x1 grid searched
    on [0.1, 3], d2 fixed at 1, the ratio d1/d0, r2 maximised; keyword arguments update the spec."""
    axes = [{"name": name, "grid_axes": [axis], "low": 0.1, "high": 3.0} for axis, name in enumerate(("d0", "d1"))]
    spec = {
        "task": "synthetic3d_field",
        "task_options": {"grid": [8, 8, 1]},
        "encoding": "afpe",
        "axes": axes,
        "fixed": {"2": 1.0},
        "ratio": ["d1", "d0"],
        "metric": "r2",
        "direction": "maximize",
    }
    return {**spec, **fields}


def tiny_synthetic2d(trainer: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A spec dict of a seconds-long synthetic2d search (64 images, one-block ViT, 3 epochs, one trial at a
    time); `trainer` keys update the trainer settings, other keyword arguments the spec."""
    settings = {"epochs": 3, "batch_size": 32, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1, "heads": 2}}
    spec = {
        "task": "synthetic2d",
        "task_options": {"n_train": 64, "n_val": 32},
        "encoding": "afpe",
        "axes": rows_cols_axes(0.05, 20),
        "trainer": {**settings, **(trainer or {})},
        "resources": {"cpus": 1, "max_concurrent": 1},
    }
    return {**spec, **fields}


@contextmanager
def postgres_database(admin_url: str, prefix: str = "afpe_test") -> Iterator[str]:
    """A fresh, empty database on the server of `admin_url` (a superuser URL), dropped afterwards; yields its
    SQLAlchemy URL."""
    import sqlalchemy

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class PrivatePostgres:
    """A PostgreSQL server of its own (initdb into a temp dir, a free loopback port, trust auth), so a test can
    stop and restart it without touching the machine's shared server. As root, the server runs as the
    `postgres` user (PostgreSQL refuses root). FileNotFoundError when no PostgreSQL binaries are installed."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="afpe-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `postgres` database."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: open connections are cut, as in a restart or failover)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash or an OOM kill does: its backends exit when they notice, and
        `start` recovers the data folder."""
        os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        status = self._pg("pg_ctl", "-D", str(self.data), "status", check=False)
        if status.returncode == 0:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*self.as_user, str(self.bin / program), *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120, cwd=self.root)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_at_ratio_one(scales: list[float]) -> float:
    """A known landscape over the first two scales: peaks at log2(s_0 / s_1) = 1."""
    return 1.0 - 0.1 * (math.log2(scales[0] / scales[1]) - 1.0) ** 2


def make_trial(
    spec: dict[str, Any],
    params: dict[str, float],
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    curve: dict[int, float] | None = None,
    number: int = 0,
) -> FrozenTrial:
    """A finished trial of `spec` (a spec dict) at `params` with the user attrs the recorder writes."""
    distributions = {
        PARAM_PREFIX + axis["name"]: FloatDistribution(axis["low"], axis["high"], log=True) for axis in spec["axes"]
    }
    curve = curve if curve is not None else ({1: value} if value is not None else {})
    attrs = {"encoding": spec.get("encoding", "afpe"), "task": spec.get("task"), "pe_seed": spec.get("pe_seed", 0)}
    attrs["seed"] = spec.get("seed", 0)
    attrs |= {"epochs": len(curve), "seconds": 1.0, "ray_trial_id": f"t{number}"}
    return create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        intermediate_values=curve,
        user_attrs=attrs,
    )


def add_trials(
    study: optuna.Study,
    spec: dict[str, Any],
    n: int,
    seed: int = 0,
    pruned_every: int = 0,
    objective: Callable[[list[float]], float] = peak_at_ratio_one,
) -> None:
    """Add `n` trials of `spec` at log-uniform random scales; every `pruned_every`-th is PRUNED after one
    epoch, the others COMPLETE after two with `objective(scales)` plus noise."""
    rng = random.Random(seed)
    space = SearchSpace.from_spec(spec)
    trials = []
    for number in range(n):
        params = {a.param: math.exp(rng.uniform(math.log(a.low), math.log(a.high))) for a in space.axes}
        value = objective(list(params.values())) + rng.gauss(0, 0.01)
        pruned = bool(pruned_every) and number % pruned_every == pruned_every - 1
        curve = {1: value - 0.3} if pruned else {1: value - 0.2, 2: value - 0.05}
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trials.append(make_trial(spec, params, value, state, curve, number))
    study.add_trials(trials)


def repeated_trials(
    spec: dict[str, Any], runs: list[tuple[dict[str, float], list[str] | None, list[float]]]
) -> list[FrozenTrial]:
    """Trials of `spec` as a study with repeats records them, for a study that numbers them from 0 in this
    order: per run (params, prior names or None, values) a first trial with the first value (tagged with the
    prior's names) and one repeat per further value (`repeat_of` the first's number, `repeat` its index)."""
    trials: list[FrozenTrial] = []
    for params, names, values in runs:
        number = len(trials)
        first = make_trial(spec, params, values[0], number=number)
        if names:
            first.set_user_attr(PRIOR_KEY, names)
        trials.append(first)
        for index, value in enumerate(values[1:], 1):
            repeat = make_trial(spec, params, value)
            repeat.set_user_attr("repeat_of", number)
            repeat.set_user_attr("repeat", index)
            trials.append(repeat)
    return trials


def spec_failing_in_training(name: str) -> dict[str, Any]:
    """A spec whose one trial passes the data check (a generated task) and fails inside training: its dataset
    (1,000,000 clips of 16 x 512 x 512) needs 30.5 TiB, a MemoryError when it is generated."""
    return {
        "name": name,
        "task": "synthetic_video",
        "task_options": {"n_train": 1_000_000, "size": 512, "frames": 16, "patch": [4, 64, 64]},
        "axes": [
            {"name": "t", "grid_axes": [0], "low": 0.1, "high": 10},
            {"name": "xy", "grid_axes": [1, 2], "low": 0.1, "high": 10},
        ],
        "n_trials": 1,
        "max_failures": 0,
        "resources": {"cpus": 1, "max_concurrent": 1},
        "trainer": {"epochs": 1, "model": {"dim": 16, "depth": 1, "heads": 2}},
    }


def stop_gracefully(process: subprocess.Popen, grace_s: float = 90) -> None:
    """SIGTERM `process` (a server a test started: it stops its own children), SIGKILL it after `grace_s`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
