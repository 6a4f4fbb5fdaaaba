"""What a study found: counts per state, finished trials, the best trial's scales and ratio, and the
boundary warnings, all by the rules of `analysis.py`. `afpe status` prints it; the REST status serves it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial

from afpe.search.analysis import best_trial, boundary_warnings, finished_count, log2_ratio, state_counts
from afpe.search.spec import SearchSpace, StudySpec


@dataclass
class StudySummary:
    name: str
    n_trials: int
    metric: str
    direction: str
    states: dict[str, int]
    finished: int = 0
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, float] = field(default_factory=dict)
    ratio: tuple[str, str] | None = None
    best_ratio: float | None = None
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        counts = ", ".join(f"{state.lower()} {count}" for state, count in self.states.items() if count)
        lines = [f"study {self.name}: {self.finished}/{self.n_trials} finished ({counts or 'no trials'})"]
        if self.best_number is None:
            lines.append(f"best: none yet ({self.metric}, {self.direction})")
        else:
            scales = ", ".join(f"{key}={value:.4g}" for key, value in self.best_params.items())
            value = f"{self.metric}={self.best_value:.4g} ({self.direction})"
            lines.append(f"best: trial {self.best_number} {value} at {scales}")
            if self.ratio is not None and self.best_ratio is not None:
                lines.append(f"ratio s_{self.ratio[0]}/s_{self.ratio[1]} = {self.best_ratio:.4g}")
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines


def summarize_trials(name: str, trials: Sequence[FrozenTrial], space: SearchSpace) -> StudySummary:
    """Summary of the trials of study `name` searched over `space`."""
    summary = StudySummary(
        name=name,
        n_trials=space.n_trials or len(trials),
        metric=space.metric,
        direction=space.direction,
        states=state_counts(trials),
        finished=finished_count(trials),
        ratio=space.ratio,
    )
    best = best_trial(trials, space.direction)
    if best is not None:
        summary.best_number, summary.best_value, summary.best_params = best.number, best.value, dict(best.params)
        x = log2_ratio(best.params, space.ratio) if space.ratio is not None else None
        summary.best_ratio = 2.0**x if x is not None else None
        summary.warnings = boundary_warnings(space, best.params)
    return summary


def summarize(study: optuna.Study, spec: StudySpec | None = None) -> StudySummary:
    """Summary of `study` (its spec from the study's user attrs unless given; imported studies work too)."""
    space = spec.search_space() if spec is not None else SearchSpace.from_spec(study.user_attrs["spec"])
    return summarize_trials(study.study_name, study.get_trials(deepcopy=False), space)
