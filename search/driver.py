"""`run_study`: a StudySpec run on Ray Tune, every trial recorded in the Optuna study `spec.name`.

Flow: open the storage (schema created here, before any worker) -> take the study's lease (one driver per
study) -> claim the study name for this spec -> on resume, fail trials a dead driver left RUNNING/WAITING ->
remove checkpoint files no trial refers to -> check the data and build its cache once, before Ray starts
(`data_check.check_data`; on a cluster's node when only the nodes see it, `prepare_data`) -> enqueue the priors no
finished trial ran (`prior_results.py`, with `spec.prior`: the first trials, within n_trials) -> run `n_trials`
(resume: n_trials minus the finished ones) fresh Tune trials with `StudyRecorder` as the searcher -> boundary
check -> summary.

Storage writes and reads during the run go through one `outage.StorageGuard`: a database restart is a
pause (reports buffered, written in order when it is back); an outage longer than its budget ends the run
with `StorageOutage` (exit code 2 in `afpe run`).

Resume never calls `Tuner.restore` (it crashed with `UpdateFinishedTrialError` after a kill -9 because
Ray's saved state is older than the database): the Optuna study is the record, so a resume is a fresh
Tune run for the remaining count.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from afpe.core.errors import UserError
from afpe.search.analysis import finished_count, search_trials
from afpe.search.data_check import DataRootError, check_data, checked_here, data_error_line
from afpe.search.head_watch import watch_head
from afpe.search.kept_models import artifact_root, study_folder, sweep
from afpe.search.lease import driver_lease
from afpe.search.outage import StorageGuard
from afpe.search.prior_results import enqueue_priors
from afpe.search.private_temp import private_ray_dir, remove_when_gone
from afpe.search.ray_token import ensure_private_token
from afpe.search.recorder import (
    DEVICE_KEY,
    DTYPE_KEY,
    EPOCH_KEY,
    HOST_KEY,
    NODE_KEY,
    WARNINGS_KEY,
    ErrorRecorder,
    OutageStopper,
    RecordingASHA,
    StudyRecorder,
)
from afpe.search.repeats import PlannedRepeat, plan_repeats
from afpe.search.run_reports import Progress, TrialWarning
from afpe.search.samplers import make_sampler
from afpe.search.spec import StudySpec
from afpe.search.storage import claim_study, default_storage_url, open_storage, public_url
from afpe.search.study_list import run_origin
from afpe.search.summary import StudySummary, summarize
from afpe.search.trial_log import captured_trial_output, trial_log_path
from afpe.search.trial_writes import fail_stale_trials

TUNE_DIR_ENV = "AFPE_TUNE_DIR"
PRIVATE_RAY_ATTEMPTS = 3
DEFAULT_TUNE_DIR = "~/.afpe/tune"


def train_trial(config: dict[str, Any]) -> None:
    """The Tune trainable: one `afpe.trainers.train` run on the device Ray granted (`granted_device`: CPU
    without a GPU, a DeviceError for a GPU torch cannot use; a fraction of a GPU caps the trial's memory at that
    fraction, `memory_fraction`), each epoch's validation metrics sent to Tune with the device, dtype, host and
    Ray node it ran on and the warnings raised since the previous report (`WARNINGS_KEY`);
    its output goes to the trial's log. After its last epoch (before that epoch's report, on which ASHA stops it)
    it writes the best epoch's model file into the study's artifact folder, named by the recorder
    (`kept_models.py`)."""
    import ray
    import torch
    from ray import tune

    from afpe.trainers import TrainConfig, train
    from afpe.trainers.device import granted_device, memory_fraction, precision_name

    trial = {key: value for key, value in config["trial"].items() if key not in ("number", "artifact")}
    with captured_trial_output(trial_log_path(Path(config["log_dir"]), config["trial"]["number"])) as log:
        device = granted_device(ray.get_gpu_ids(), torch.cuda.is_available(), os.environ.get("CUDA_VISIBLE_DEVICES"))
        fraction = memory_fraction(config["gpu_share"])
        if device.startswith("cuda") and fraction is not None:
            torch.cuda.set_per_process_memory_fraction(fraction, torch.device(device))
        ran_on = {DEVICE_KEY: device, DTYPE_KEY: precision_name(device), HOST_KEY: socket.gethostname()}
        ran_on[NODE_KEY] = ray.get_runtime_context().get_node_id()
        train_config = TrainConfig.model_validate({**config["train"], **trial, "device": device})

        def report(epoch: int, metrics: dict[str, float]) -> None:
            raised = log.take()
            tune.report({**metrics, EPOCH_KEY: epoch, **ran_on, **({WARNINGS_KEY: raised} if raised else {})})

        train(train_config, report=report, model_file=Path(config["artifact_dir"]) / config["trial"]["artifact"])


def base_train_config(spec: StudySpec) -> dict[str, Any]:
    """The TrainConfig fields shared by every trial (the trial adds its scales)."""
    settings = spec.trainer.model_dump(mode="json")
    if settings["num_threads"] is None:
        settings["num_threads"] = max(1, int(spec.resources.cpus))
    return {
        **settings,
        "task": spec.task,
        "task_options": spec.task_options,
        "encoding": spec.encoding,
        "pe_seed": spec.pe_seed,
        "seed": spec.seed,
        "data_root": spec.resolved_data_root(),
        "metric": spec.metric,
    }


@contextmanager
def ray_session(address: str | None, on_head_gone: Callable[[str], None] | None = None) -> Iterator[None]:
    """Connect to `address` (or $RAY_ADDRESS, as inside a Ray Job), else start a private local Ray in its
    own short temp dir inside a folder only its owner enters (`private_temp`), with a token file only its
    owner reads, shut down and removed afterwards (after a SIGKILL too). An already initialised Ray is used
    as it is. Connected to a cluster, `on_head_gone` gets one line once its head is gone (`head_watch`)."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    temp_dir, watching = None, threading.Event()
    if address:
        ray.init(address=address, log_to_driver=False)
        if on_head_gone is not None:
            watch_head(ray.get_runtime_context().gcs_address, on_head_gone, watching)
    else:
        temp_dir, ray_dir = private_ray_dir()
        remove_when_gone(temp_dir)
        ensure_private_token()  # Ray would write a world-readable ~/.ray/auth_token
        start_private_ray(ray_dir)
    try:
        yield
    finally:
        watching.set()
        ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


class PrivateRayStartError(UserError):
    """The private local Ray did not come up (printed as one line by `afpe`, exit code 2)."""


def start_private_ray(temp_dir: str, attempts: int = PRIVATE_RAY_ATTEMPTS) -> None:
    """`ray.init` of a private local Ray in `temp_dir`, tried `attempts` times: Ray gives its raylet a fixed
    30 s to register and raises a bare Exception past that, which a loaded machine reaches (seen here at load
    10: `afpe run` died with a traceback). PrivateRayStartError (one line, exit 2) when every attempt timed out."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(_temp_dir=temp_dir, include_dashboard=False, log_to_driver=False)
            return
        except Exception as error:  # noqa: BLE001 - Ray raises a bare Exception for this timeout
            if "timed out during startup" not in str(error):
                raise
            ray.shutdown()
            print(f"the private Ray did not start within Ray's 30 s (attempt {attempt} of {attempts})", flush=True)
    raise PrivateRayStartError(
        f"the private Ray did not start in {attempts} attempts of 30 s: the machine is too busy; try again later "
        "or give a running cluster with --ray-address"
    )


def tune_dir() -> Path:
    """Where Tune keeps its experiment folders ($AFPE_TUNE_DIR, default ~/.afpe/tune)."""
    path = Path(os.environ.get(TUNE_DIR_ENV) or DEFAULT_TUNE_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_resources(spec: StudySpec) -> None:
    """A trial that no alive Ray node can host would wait forever: refuse it (`unplaceable`)."""
    import ray

    problem = unplaceable(spec.resources.cpus, spec.resources.gpu, [n["Resources"] for n in ray.nodes() if n["Alive"]])
    if problem is not None:
        raise ValueError(problem)


def unplaceable(cpus: float, gpu: float, nodes: list[dict[str, float]]) -> str | None:
    """Why a trial asking for `cpus` CPUs and `gpu` GPUs fits on none of `nodes` (each node's Ray resources;
    Ray places all of a trial's resources on one node, so cluster totals are not enough), naming the spec field
    to lower; None when one node can host it."""
    if any(node.get("CPU", 0.0) >= cpus and node.get("GPU", 0.0) >= gpu for node in nodes):
        return None
    largest = {key: max((node.get(key, 0.0) for node in nodes), default=0.0) for key in ("CPU", "GPU")}
    total = {key: sum(node.get(key, 0.0) for node in nodes) for key in ("CPU", "GPU")}
    for field, key, asked, lowest in (("cpus", "CPU", cpus, 1), ("gpu", "GPU", gpu, 0)):
        if asked > largest[key]:
            return (
                f"resources.{field}: each trial asks for {asked:g} {key} but the largest Ray node has "
                f"{largest[key]:g} ({total[key]:g} in a cluster of {len(nodes)} alive node(s)); a trial runs on one "
                f"node: lower it (e.g. --set resources.{field}={lowest})"
            )
    return (
        f"resources.cpus and resources.gpu: each trial asks for {cpus:g} CPU and {gpu:g} GPU on one node, but no "
        f"alive Ray node has both (the most CPUs on a node: {largest['CPU']:g}, GPUs: {largest['GPU']:g}); lower "
        "resources.cpus or add CPUs to the GPU nodes"
    )


def prepare_data(spec: StudySpec) -> None:
    """Decode the task's dataset into its on-disk cache once, before Tune starts trials (`Task.prepare`), so the
    first trials read one cache instead of each decoding the files (tasks without a disk cache skip it), as a Ray
    task with a trial's CPUs on a node that hosts trials and sees their data and cache (docker-compose.yml: the
    head that runs the driver mounts no data; the workers share the cache volume). Where this process sees the
    data, `data_check.check_data` does it before Ray starts (`_run_leased`). DataRootError (one line naming
    `data_root`) when the node cannot read the data."""
    import ray

    from afpe.trainers import DataError

    try:
        ray.get(ray.remote(num_cpus=spec.resources.cpus, num_gpus=0)(_prepare_task).remote(*_data_arguments(spec)))
    except DataError as error:  # Ray raises a subclass of the task's exception
        raise DataRootError(data_error_line(error)) from None


def _data_arguments(spec: StudySpec) -> tuple[str, dict[str, Any], str | None]:
    return spec.task, spec.task_options, spec.resolved_data_root()


def _prepare_task(task: str, options: dict[str, Any], data_root: str | None) -> None:
    from afpe.trainers import build_task

    build_task(task, options, data_root).prepare()


def run_trials(
    spec: StudySpec,
    study: optuna.Study,
    count: int,
    on_progress: Callable[[Progress], None] | None,
    on_warning: Callable[[TrialWarning], None] | None = None,
    plan: list[PlannedRepeat] | None = None,
    guard: StorageGuard | None = None,
    *,
    checkpoints: Path,
) -> None:
    """`count` Tune trials of `spec`, recorded in `study` (Ray must be initialised): search trials, or with
    `plan` the planned repeats (never stopped early by a scheduler). Each trial's output is kept in
    `<tune dir>/<experiment>/logs/trial-<number>.log` (the trial's user attr `log`). Writes go through
    `guard`; StorageOutage when an outage outlasted its budget. `checkpoints`: the study's artifact folder (each
    COMPLETE trial's model file kept there while the answer can pick it)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment banner and tables: the CLI prints progress
    # Ctrl-C must stop the run: Tune's own SIGINT handler ends the fit quietly and returns, failing the running
    # trials, so `run_study` went on to the repeats and `afpe campaign run` to its next study
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # only the JSON logger (added below) of the
    # default JSON/CSV/TensorBoard trio: the Optuna study is the record, and each logger costs time on every result
    scheduler = None
    if spec.scheduler is not None and not plan:
        scheduler = RecordingASHA(
            time_attr=EPOCH_KEY,
            max_t=spec.trainer.epochs,
            grace_period=min(spec.scheduler.grace_period, spec.trainer.epochs),
            reduction_factor=spec.scheduler.reduction_factor,
            brackets=spec.scheduler.brackets,
        )
    experiment = f"{spec.name}-{'repeats-' if plan else ''}{time.strftime('%Y%m%d-%H%M%S')}"
    log_dir = tune_dir() / experiment / "logs"
    recorder = StudyRecorder(
        spec,
        study,
        scheduler=scheduler,
        on_progress=on_progress,
        on_warning=on_warning,
        log_dir=log_dir,
        plan=plan,
        guard=guard,
        checkpoints=checkpoints,
    )
    resources = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpu}
    tuner = tune.Tuner(
        tune.with_resources(train_trial, resources),
        param_space={
            "train": base_train_config(spec),
            "log_dir": str(log_dir),
            "gpu_share": spec.resources.gpu,
            "artifact_dir": str(checkpoints),
        },
        tune_config=tune.TuneConfig(
            search_alg=recorder,
            scheduler=scheduler,
            metric=spec.metric,
            mode="max" if spec.direction == "maximize" else "min",
            num_samples=count,
            max_concurrent_trials=spec.resources.max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=str(tune_dir()),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            verbose=0,
            stop=OutageStopper(recorder),
            callbacks=[ErrorRecorder(recorder), JsonLoggerCallback()],
        ),
    )
    try:
        tuner.fit()
    finally:
        recorder.finish()


def run_study(
    spec: StudySpec,
    storage: str | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_warning: Callable[[TrialWarning], None] | None = None,
    on_storage: Callable[[str], None] | None = None,
    outage_budget_s: float | None = None,
) -> StudySummary:
    """Run (or with `resume`, top up to `spec.n_trials` finished search trials) the study, then the repeats its
    `repeats` section asks for that have not completed yet; return its summary.

    `storage`: an RDB URL (default $AFPE_STORAGE or sqlite under ~/.afpe/). `ray_address`: a Ray cluster
    (default: $RAY_ADDRESS, else a private local Ray). `on_progress` is called as each trial ends,
    `on_warning` once for each distinct warning raised inside a trial, `on_storage` with one line when the
    storage is lost and one when it is back, and on resume one when the previous driver stopped renewing the
    study's lease (it is waited out: `lease.StudyLeases.acquire_from_stalled`). `outage_budget_s` (default
    $AFPE_STORAGE_OUTAGE_S, else 300): how long an outage is ridden out before StorageOutage ends the run. The
    study's lease (`lease.py`) is held throughout: LeaseHeldError (a ValueError naming the holder) when another
    live driver runs the study."""
    guard = StorageGuard(public_url(storage or default_storage_url()), outage_budget_s, on_storage)
    optuna_storage = guard.call(lambda: open_storage(storage))  # a database not up yet is waited for, as an outage
    checkpoints = study_folder(artifact_root(storage or default_storage_url()), spec.name)
    with driver_lease(storage, spec.name, guard.call, on_stalled=on_storage if resume else None) as abandon:
        return _run_leased(
            spec, optuna_storage, guard, ray_address, resume, on_progress, on_warning, checkpoints, abandon
        )


def _run_leased(
    spec: StudySpec,
    optuna_storage: optuna.storages.BaseStorage,
    guard: StorageGuard,
    ray_address: str | None,
    resume: bool,
    on_progress: Callable[[Progress], None] | None,
    on_warning: Callable[[TrialWarning], None] | None,
    checkpoints: Path,
    abandon: Callable[[str], None],
) -> StudySummary:
    """`run_study` while the driver holds the study's lease: only the holder fails stale trials, removes
    checkpoint files no trial refers to, and runs more; it ends (`abandon`) once its cluster's head is gone."""
    study = guard.call(lambda: claim_study(optuna_storage, spec, resume, run_origin()))
    if resume:
        guard.call(lambda: fail_stale_trials(study))
    guard.call(lambda: sweep(study, checkpoints))
    trials = guard.call(lambda: study.get_trials(deepcopy=False))
    finished = finished_count(search_trials(trials))
    count = spec.n_trials - finished if resume else spec.n_trials
    study.sampler = make_sampler(spec, offset=len(trials))
    if count > 0 or plan_repeats(spec, trials):
        here = checked_here(spec.resolved_data_root(), ray_address)
        if here:
            check_data(*_data_arguments(spec))  # before Ray starts: bad data is one line, no trial recorded
        with ray_session(ray_address, on_head_gone=abandon):
            check_resources(spec)  # once per run, for the search and the repeats alike
            if not here:
                prepare_data(spec)
            if count > 0:
                if spec.prior:  # once the data and Ray are up: a refused run leaves no waiting trial
                    guard.call(lambda: enqueue_priors(study, spec.search_space().priors, count))
                run_trials(spec, study, count, on_progress, on_warning, guard=guard, checkpoints=checkpoints)
            plan = plan_repeats(spec, guard.call(lambda: study.get_trials(deepcopy=False)))
            if plan:
                run_trials(
                    spec, study, len(plan), on_progress, on_warning, plan=plan, guard=guard, checkpoints=checkpoints
                )
    summary = guard.call(lambda: summarize(study, spec))
    guard.call(lambda: study.set_user_attr("warnings", summary.warnings))
    return summary
