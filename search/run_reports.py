"""What a run tells its caller as trials end: `Progress` after each trial's end is written, and each distinct
warning raised inside a trial once (`TrialWarning`). The recorder hands these small classes the events; they
hold the counters and the texts already said."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from afpe.search.analysis import best_trial, finished_count, search_trials


@dataclass
class Progress:
    """Handed to the progress callback each time a trial ends."""

    finished: int
    failed: int
    total: int
    best_value: float | None
    best_params: dict[str, float]
    elapsed_s: float
    eta_s: float | None
    last_number: int
    last_state: str
    phase: str = "search"  # or "repeat"


@dataclass(frozen=True)
class TrialWarning:
    """A warning raised inside a trial, handed to the warning callback the first time its text is seen."""

    number: int
    text: str
    log: str | None


class ProgressReporter:
    """Counts the trials this run ended and reports `Progress` of its phase: search trials finished of
    `total` (n_trials), or repeats run of those planned; the best value is the best search trial's."""

    def __init__(self, total: int, phase: str, direction: str, on_progress: Callable[[Progress], None]) -> None:
        self.total = total
        self.phase = phase
        self.direction = direction
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.ended_here = 0
        self.completed_here = 0

    def ended(self, state: TrialState) -> None:
        """A trial of this run ended in `state` (its end may still wait in the storage guard)."""
        self.ended_here += 1
        self.completed_here += state == TrialState.COMPLETE

    def report(self, study: optuna.Study, number: int) -> None:
        """Read `study` (a storage read: run it through the guard, after the end of trial `number` is written)
        and hand its progress to the callback."""
        self.on_progress(self.progress(study.get_trials(deepcopy=False), number))

    def progress(self, trials: list[optuna.trial.FrozenTrial], number: int) -> Progress:
        searched = search_trials(trials)
        phase = [trial for trial in trials if trial not in searched] if self.phase == "repeat" else searched
        finished = self.completed_here if self.phase == "repeat" else finished_count(searched)
        best = best_trial(searched, self.direction)
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - (self.ended_here if self.phase == "repeat" else finished), 0)
        return Progress(
            finished=finished,
            failed=sum(trial.state == TrialState.FAIL for trial in phase),
            total=self.total,
            best_value=best.value if best else None,
            best_params=dict(best.params) if best else {},
            elapsed_s=elapsed,
            eta_s=elapsed / self.ended_here * remaining if self.ended_here else None,
            last_number=number,
            last_state=trials[number].state.name,
            phase=self.phase,
        )


class WarningReporter:
    """Hands each distinct warning text to `on_warning` the first time any trial of the run raises it."""

    def __init__(self, on_warning: Callable[[TrialWarning], None] | None) -> None:
        self.on_warning = on_warning
        self.seen: set[str] = set()

    def heard(self, number: int, texts: list[str], log: str | None) -> None:
        for text in texts:
            if text not in self.seen:
                self.seen.add(text)
                if self.on_warning is not None:
                    self.on_warning(TrialWarning(number, text, log))
