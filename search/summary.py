"""What a study found: counts per state, the answer (best configuration: mean, 95 % interval, n, the ratios tied
with it; see afpe.search.repeats), its scales and ratio, and the boundary check.

Boundary check: with u = (log s - log low) / (log high - log low) the best scale's position in its searched
range, u < 0.1 or u > 0.9 means the optimum may lie outside the range (the published EchoNet search never
bracketed its optimum); the same test applies to the best ratio inside the range of reachable ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from afpe.search.repeats import Answer, is_repeat, search_trials, study_answer
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
    answer: Answer | None = None
    repeats_done: int = 0
    repeats_planned: int = 0

    @property
    def finished(self) -> int:
        """COMPLETE + PRUNED search trials: the count `n_trials` refers to."""
        return self.states.get("COMPLETE", 0) + self.states.get("PRUNED", 0)

    def lines(self) -> list[str]:
        counts = ", ".join(f"{state.lower()} {count}" for state, count in self.states.items() if count)
        lines = [f"study {self.name}: {self.finished}/{self.n_trials} finished ({counts or 'no trials'})"]
        if self.repeats_planned:
            lines.append(f"repeats: {self.repeats_done}/{self.repeats_planned} complete")
        if self.best_number is None or self.answer is None:
            lines.append(f"best: none yet ({self.metric}, {self.direction})")
        else:
            best = self.answer.best
            scales = ", ".join(f"{key}={value:.4g}" for key, value in self.best_params.items())
            value = f"{self.metric}={self.best_value:.4g} ({self.direction})"
            sure = f", mean of n={best.n}, 95% CI [{best.ci[0]:.4g}, {best.ci[1]:.4g}]" if best.ci else ", n=1"
            lines.append(f"best: trial {self.best_number} {value}{sure} at {scales}")
            if self.ratio is not None and self.best_ratio is not None:
                line = f"ratio s_{self.ratio[0]}/s_{self.ratio[1]} = {self.best_ratio:.4g}"
                if self.answer.ratio_range is not None and self.answer.repeated:
                    low, high = self.answer.ratio_range
                    line += (
                        f"; ratios not distinguishable from it: [{low:.4g}, {high:.4g}] "
                        f"({len(self.answer.tied)} of {self.answer.repeated} repeated configurations)"
                    )
                lines.append(line)
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines

    def to_json(self) -> dict:
        """The summary as JSON data; `best` carries the answer's `mean`, `ci` ([low, high] or null) and `n`."""
        best = None
        if self.answer is not None:
            estimate = self.answer.best
            best = {
                "number": estimate.number,
                "value": estimate.mean,
                "mean": estimate.mean,
                "ci": list(estimate.ci) if estimate.ci else None,
                "n": estimate.n,
                "values": estimate.values,
                "params": estimate.params,
                "ratio": estimate.ratio,
            }
        tied = [
            {"number": e.number, "ratio": e.ratio, "mean": e.mean, "ci": list(e.ci) if e.ci else None, "n": e.n}
            for e in (self.answer.tied if self.answer else [])
        ]
        return {
            "name": self.name,
            "n_trials": self.n_trials,
            "finished": self.finished,
            "states": self.states,
            "metric": self.metric,
            "direction": self.direction,
            "best": best,
            "ratio": list(self.ratio) if self.ratio else None,
            "ratio_range": list(self.answer.ratio_range) if self.answer and self.answer.ratio_range else None,
            "tied": tied,
            "repeats": {"done": self.repeats_done, "planned": self.repeats_planned},
            "warnings": self.warnings,
        }


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
    searched = search_trials(trials)
    states = {state.name: sum(trial.state == state for trial in searched) for state in TrialState}
    summary = StudySummary(
        name=study.study_name,
        n_trials=spec.n_trials,
        metric=spec.metric,
        direction=spec.direction,
        states=states,
        ratio=spec.ratio,
    )
    summary.repeats_done = sum(is_repeat(t) and t.state == TrialState.COMPLETE for t in trials)
    if spec.repeats is not None:
        summary.repeats_planned = spec.repeats.top_k * spec.repeats.seeds
    summary.answer = study_answer(spec, trials)
    if summary.answer is not None:
        best = summary.answer.best
        summary.best_number, summary.best_value, summary.best_params = best.number, best.mean, dict(best.params)
        summary.best_ratio = best.ratio
        summary.warnings = boundary_warnings(spec, best.params)
    return summary
