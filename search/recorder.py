"""One Ray Tune trial = one Optuna trial, recorded honestly: a thin Tune `Searcher` over Optuna's ask/tell.

Why not `ray.tune.search.optuna.OptunaSearch`: measured with Ray 2.60 / Optuna 5.0 it (1) pickles the
storage, password included, into Ray's experiment state, (2) tells trials stopped by ASHA as COMPLETE
with their last value and drops the last step's intermediate value, (3) leaves trials RUNNING forever when
the driver dies (no heartbeat under ask/tell) and (4) pairs with `Tuner.restore`, which crashed with
`UpdateFinishedTrialError`. This searcher owns the Optuna calls instead:

- `suggest` asks Optuna for the scales (log-uniform, `s_<axis>`) and tags the trial's user attrs;
- `on_trial_result` stores each epoch's metric as the intermediate value at step = epoch, its one write per
  epoch (the result on which the scheduler says STOP reaches only `on_trial_complete`, stored the same way);
- `on_trial_complete` tells COMPLETE (value = best epoch's metric) when all epochs ran, its checkpoint attached
  first and the checkpoints the answer can no longer pick pruned after (`checkpoint_keeper.py`), PRUNED when the
  scheduler stopped it (`RecordingASHA.stopped`), FAIL when it errored past its retries (the error text
  arrives through `ErrorRecorder`) or stopped for any other reason (e.g. the driver was interrupted);
- it pickles without its study (only names), so Ray's saved state never holds a connection or password;
- every storage call (ask, writes, reads) goes through a `StorageGuard` (`outage.py`): while the database is
  down, reports are buffered in order and no new trial starts; trials keep training. `OutageStopper` ends the
  run when the outage outlasts its budget, and `finish` then raises `StorageOutage`;
- progress and warnings go to the caller through `run_reports.py`, kept model files through
  `checkpoint_keeper.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from afpe.search.checkpoint_keeper import CheckpointKeeper
from afpe.search.kept_models import new_artifact_id
from afpe.search.outage import StorageGuard, StorageOutage
from afpe.search.repeats import REPEAT_OF, PlannedRepeat
from afpe.search.run_reports import Progress, ProgressReporter, TrialWarning, WarningReporter
from afpe.search.samplers import search_distributions
from afpe.search.spec import StudySpec, is_isotropic
from afpe.search.trial_error import trial_error_text
from afpe.search.trial_log import trial_log_path
from afpe.search.trial_writes import fail_stale_trials, finish_trial, set_intermediate_value, set_trial_user_attr
from afpe.search.trial_writes import trial_id as storage_id

EPOCH_KEY = "epoch"
DEVICE_KEY, DTYPE_KEY = "device", "dtype"  # what a trial trains on, reported with each epoch, kept as user attrs
HOST_KEY, NODE_KEY = "host", "ray_node_id"  # where it trains (host name, Ray node), reported and kept alike
RAN_ON_KEYS = (DEVICE_KEY, DTYPE_KEY, HOST_KEY, NODE_KEY)
WARNINGS_KEY = "warnings"
ERROR_TEXT_LIMIT = 2000
OUTAGE_STOP = "the storage outage outlasted its budget: the run stopped before the trial finished"


class RecordingASHA(AsyncHyperBandScheduler):
    """ASHA that remembers which trials it stopped, so they can be recorded as PRUNED."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped: set[str] = set()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return decision


@dataclass
class _Live:
    """A Ray trial's Optuna trial and what it reported in its current attempt."""

    optuna_id: int
    number: int
    artifact: str  # the id of the checkpoint file the trial writes (`kept_models.new_artifact_id`)
    started: float = field(default_factory=time.monotonic)
    values: dict[int, float] = field(default_factory=dict)
    retries: int = 0
    error: str | None = None
    log: str | None = None
    warnings: list[str] = field(default_factory=list)


class StudyRecorder(Searcher):
    def __init__(
        self,
        spec: StudySpec,
        study: optuna.Study,
        scheduler: RecordingASHA | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_warning: Callable[[TrialWarning], None] | None = None,
        log_dir: Path | None = None,
        plan: list[PlannedRepeat] | None = None,
        guard: StorageGuard | None = None,
        *,
        checkpoints: Path,
    ) -> None:
        """`checkpoints`: the study's artifact folder, where each trial writes its model file (`kept_models.py`)."""
        super().__init__(metric=spec.metric, mode="max" if spec.direction == "maximize" else "min")
        self.spec = spec
        self.study = study
        self.guard = guard or StorageGuard("the storage")
        self.ask_interrupted = False  # an ask cut off by an outage may have left a trial RUNNING
        self.unsettled: set[int] = set()  # numbers of ended trials whose end is not written yet
        self.scheduler = scheduler
        self.log_dir = log_dir
        top_k = spec.repeats.top_k if spec.repeats is not None else 1
        self.checkpoints = CheckpointKeeper(checkpoints, spec.direction, top_k)
        self.plan = list(plan or [])  # repeats phase: each suggestion is the next planned repeat
        total, phase = (len(self.plan), "repeat") if plan else (spec.n_trials, "search")
        self.progress = ProgressReporter(total, phase, spec.direction, on_progress) if on_progress else None
        self.warnings = WarningReporter(on_warning)
        self.distributions = search_distributions(spec)
        self.live: dict[str, _Live] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles searchers into its experiment state: keep names and counters, no study/storage."""
        state = dict(self.__dict__)
        state.update(study=None, scheduler=None, guard=None, progress=None, warnings=None)
        return state

    # --- Tune Searcher interface -------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next trial's config; None (Tune asks again later) while the storage is down, FINISHED once the
        outage outlasted its budget (Tune waits for a suggestion without checking its stopper)."""
        if self.guard.exceeded:
            return Searcher.FINISHED
        if not self.guard.flush():
            return None
        repeat = self.plan.pop(0) if self.plan else None
        seed, pe_seed = (repeat.seed, repeat.pe_seed) if repeat else (self.spec.seed, self.spec.pe_seed)
        trial = self.guard.attempt(partial(self._ask, repeat))
        if trial is None:
            self.ask_interrupted = True
            if repeat is not None:
                self.plan.insert(0, repeat)
            return None
        attrs = {"encoding": self.spec.encoding, "task": self.spec.task, "pe_seed": pe_seed, "seed": seed}
        attrs |= {"ray_trial_id": trial_id, "epochs": 0, "seconds": 0.0, "retries": 0}
        if self.log_dir is not None:
            attrs["log"] = str(trial_log_path(self.log_dir, trial.number))
        artifact = new_artifact_id(trial.number)
        self.live[trial_id] = _Live(storage_id(trial), trial.number, artifact, log=attrs.get("log"))
        self.guard.write(partial(self._set_attrs, storage_id(trial), attrs))
        params = {name: trial.params[name] for name in self.distributions}
        seeds = {"seed": seed, "pe_seed": pe_seed, "number": trial.number, "artifact": artifact}
        if not self.spec.axes:  # a baseline: an encoding without scales
            return {"trial": seeds}
        if is_isotropic(self.spec.encoding):
            return {"trial": {"scale": params[self.spec.axes[0].param], **seeds}}
        return {"trial": {"scales": self.spec.scales_for(params), **seeds}}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        live = self.live.get(trial_id)
        if live is None or EPOCH_KEY not in result:
            return
        if result.get(WARNINGS_KEY):  # kept in the user attr `warnings`; each new text said once
            texts = list(result[WARNINGS_KEY])
            live.warnings.extend(texts)
            self.guard.write(partial(self._set_attrs, live.optuna_id, {WARNINGS_KEY: list(live.warnings)}))
            self.warnings.heard(live.number, texts, live.log)
        epoch = int(result[EPOCH_KEY])
        if epoch == 1:  # a retried trial starts over (maybe elsewhere)
            live.values.clear()
            ran_on = {key: result[key] for key in RAN_ON_KEYS if key in result}
            self.guard.write(partial(self._set_attrs, live.optuna_id, ran_on))
        value = float(result.get(self.spec.metric, math.nan))
        live.values[epoch] = value
        self.guard.write(partial(set_intermediate_value, self.study, live.optuna_id, epoch, value))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        live = self.live.get(trial_id)
        if live is None:
            return
        if result and not error:  # a result that made the scheduler STOP reaches only this hook
            self.on_trial_result(trial_id, result)
        if error:
            # Tune calls ErrorRecorder.on_trial_error next, with the error text; `finish` tells it otherwise
            live.error = "errored past its retries"
            return
        self._tell(trial_id)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the Optuna storage is the record (and resume never restores Ray's state)."""
        Path(checkpoint_path).write_text("{}")

    def restore(self, checkpoint_path: str) -> None:
        return None

    # --- recording ---------------------------------------------------------------------------------
    def record_error(self, trial_id: str, message: str) -> None:
        """The failed trial's error text (from Tune's callback), then tell it FAIL."""
        if trial_id in self.live:
            self.live[trial_id].error = message
            self._tell(trial_id)

    def record_retry(self, trial_id: str) -> None:
        """Ray restarts a failed trial (FailureConfig.max_failures): count it in the `retries` attr."""
        if trial_id in self.live:
            live = self.live[trial_id]
            live.retries += 1
            self.guard.write(partial(self._set_attrs, live.optuna_id, {"retries": live.retries}))

    def finish(self) -> None:
        """After Tune returns: whatever is still open ends as FAIL, so nothing stays RUNNING, and the buffered
        writes are in before the run counts as done. StorageOutage when an outage outlasted its budget (the
        trials in flight are written if the storage is back by then, else left RUNNING for `--resume`)."""
        stopped_by_outage = self.guard.exceeded
        for trial_id in list(self.live):
            if self.live[trial_id].error is None:
                reason = OUTAGE_STOP if stopped_by_outage else "the driver stopped before the trial finished"
                self.live[trial_id].error = reason
            self._tell(trial_id)
        in_flight = sorted(self.unsettled)
        if stopped_by_outage:
            if self.guard.flush():
                self.guard.write(self._fail_orphans)
            raise self.guard.outage(in_flight, recorded=not self.unsettled)
        try:
            self.guard.call(self._fail_orphans)
        except StorageOutage:
            raise self.guard.outage(in_flight, recorded=False) from None

    def _ask(self, repeat: PlannedRepeat | None) -> optuna.Trial:
        """A new trial from Optuna; a planned repeat is enqueued first, so the ask takes its fixed params."""
        if repeat is not None:
            self.study.enqueue_trial(repeat.params, user_attrs={REPEAT_OF: repeat.repeat_of, "repeat": repeat.index})
        return self.study.ask(self.distributions)

    def _fail_orphans(self) -> None:
        """An ask that an outage cut off may have created a trial Tune never ran: record it FAIL."""
        if self.ask_interrupted:
            fail_stale_trials(self.study, "created by an ask that a storage outage cut off; never ran")
            self.ask_interrupted = False

    def _set_attrs(self, optuna_id: int, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            set_trial_user_attr(self.study, optuna_id, key, value)

    def _tell(self, trial_id: str) -> None:
        """Write the trial's end (attrs, then its state and value) through the guard, then report progress."""
        live = self.live.pop(trial_id)
        last_epoch = max(live.values, default=0)
        attrs: dict[str, Any] = {"epochs": last_epoch, "seconds": round(time.monotonic() - live.started, 3)}
        value = None
        if live.error is not None:
            state = TrialState.FAIL
            pointer = f"\n(full log: {live.log})" if live.log else ""
            attrs["error"] = live.error[-ERROR_TEXT_LIMIT:] + pointer
        elif last_epoch >= self.spec.trainer.epochs:
            state = TrialState.COMPLETE
            pick = max if self.spec.direction == "maximize" else min
            value = pick((v for v in live.values.values() if not math.isnan(v)), default=math.nan)
        elif self.scheduler is not None and trial_id in self.scheduler.stopped and last_epoch > 0:
            state = TrialState.PRUNED  # Optuna's tell gives it its last step's value
        else:
            state = TrialState.FAIL
            reason = "stopped before its first epoch" if last_epoch == 0 else f"stopped after epoch {last_epoch}"
            attrs["error"] = f"{reason} without finishing (driver stopped)"
        self.guard.write(partial(self._set_attrs, live.optuna_id, attrs))
        if state == TrialState.COMPLETE:
            self.guard.write(partial(self.checkpoints.keep, self.study, live.optuna_id, live.number, live.artifact))
        else:
            self.checkpoints.drop(live.artifact)
        self.unsettled.add(live.number)
        self.guard.write(partial(self._settle, live.number, state, value))
        if state == TrialState.COMPLETE:
            self.guard.write(partial(self.checkpoints.prune, self.study))
        if self.progress is not None:
            self.progress.ended(state)
            self.guard.write(partial(self.progress.report, self.study, live.number))

    def _settle(self, number: int, state: TrialState, value: float | None) -> None:
        finish_trial(self.study, number, state, value)
        self.unsettled.discard(number)


class OutageStopper(Stopper):
    """Stops the whole Tune run once the recorder's storage outage has outlasted its budget."""

    def __init__(self, recorder: StudyRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.recorder.guard.exceeded


class ErrorRecorder(Callback):
    """Hands retries and a trial's final error text (Ray's error.txt) to the recorder, and gives the recorder's
    buffered writes a chance at every step of the Tune loop (they wait only while the storage is down)."""

    def __init__(self, recorder: StudyRecorder) -> None:
        self.recorder = recorder

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.recorder.guard.flush()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.recorder.record_retry(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.recorder.record_error(trial.trial_id, trial_error_text(trial, ERROR_TEXT_LIMIT))
