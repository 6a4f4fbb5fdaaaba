"""What a study found: counts per state, the best trial's scales and ratio, and the boundary check.

Boundary check: with u = (log s - log low) / (log high - log low) the best scale's position in its searched
range, u < 0.1 or u > 0.9 means the optimum may lie outside the range (the published EchoNet search never
bracketed its optimum); the same test applies to the best ratio inside the range of reachable ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from afpe.search.spec import StudySpec

BOUNDARY_FRACTION = 0.1
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class StudySummary:
    name: str
    n_trials: int
    metric: str
    direction: str
    states: dict[str, int]
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, float] = field(default_factory=dict)
    ratio: tuple[str, str] | None = None
    best_ratio: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def finished(self) -> int:
        """COMPLETE + PRUNED trials: the count `n_trials` refers to."""
        return self.states.get("COMPLETE", 0) + self.states.get("PRUNED", 0)

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


def log_position(value: float, low: float, high: float) -> float:
    """Where `value` lies in [low, high] on a log scale: 0 at low, 1 at high."""
    return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))


def boundary_warnings(spec: StudySpec, params: dict[str, float]) -> list[str]:
    """A warning per searched scale (and for the ratio) whose best value lies in the outer 10 % of its range."""
    warnings = []
    ranges = {axis.param: (axis.low, axis.high) for axis in spec.axes}
    checks = [(name, params[name], *ranges[name]) for name in ranges if name in params]
    if spec.ratio is not None and all(f"s_{name}" in params for name in spec.ratio):
        top, bottom = (ranges[f"s_{name}"] for name in spec.ratio)
        ratio = params[f"s_{spec.ratio[0]}"] / params[f"s_{spec.ratio[1]}"]
        checks.append((f"s_{spec.ratio[0]}/s_{spec.ratio[1]}", ratio, top[0] / bottom[1], top[1] / bottom[0]))
    for name, value, low, high in checks:
        position = log_position(value, low, high)
        if position < BOUNDARY_FRACTION or position > 1 - BOUNDARY_FRACTION:
            edge = "lower" if position < 0.5 else "upper"
            warnings.append(
                f"best {name}={value:.4g} lies in the {edge} 10% of its range [{low:.4g}, {high:.4g}] (log scale): "
                "the optimum may lie outside; widen the range"
            )
    return warnings


def summarize(study: optuna.Study, spec: StudySpec | None = None) -> StudySummary:
    """Summary of `study` (its spec from the study's user attrs unless given)."""
    spec = spec or StudySpec.model_validate(study.user_attrs["spec"])
    trials = study.get_trials(deepcopy=False)
    states = {state.name: sum(trial.state == state for trial in trials) for state in TrialState}
    summary = StudySummary(
        name=study.study_name, n_trials=spec.n_trials, metric=spec.metric, direction=spec.direction,
        states=states, ratio=spec.ratio,
    )
    if states["COMPLETE"]:
        best = study.best_trial
        summary.best_number, summary.best_value, summary.best_params = best.number, best.value, dict(best.params)
        if spec.ratio is not None:
            summary.best_ratio = best.params[f"s_{spec.ratio[0]}"] / best.params[f"s_{spec.ratio[1]}"]
        summary.warnings = boundary_warnings(spec, best.params)
    return summary
