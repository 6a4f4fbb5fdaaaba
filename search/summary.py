"""What a study found: counts per state of its search trials, the answer (the best configuration's mean, 95 %
interval and n, and the ratios tied with it: see `repeats.py`), its scales and ratio, the smoothed optimum (the
ratio where a GP fitted to every trial is best, with a 95 % interval: see `surface.py`), and the boundary
warnings, all by the rules of `analysis.py`. `afpe status` prints it; the REST status serves it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from afpe.search.analysis import (
    boundary_warnings,
    complete_trials,
    finished_count,
    is_repeat,
    search_trials,
    state_counts,
)
from afpe.search.repeats import Answer, Estimate, study_answer
from afpe.search.spec import SearchSpace, StudySpec
from afpe.search.surface import Optimum, smoothed_optimum


def estimate_json(estimate: Estimate) -> dict[str, Any]:
    """One configuration's estimate as JSON data (`ci`: [low, high], or null for n = 1)."""
    return {
        "number": estimate.number,
        "mean": estimate.mean,
        "ci": list(estimate.ci) if estimate.ci else None,
        "n": estimate.n,
        "values": estimate.values,
        "params": estimate.params,
        "ratio": estimate.ratio,
    }


def optimum_json(optimum: Optimum | None) -> dict[str, Any] | None:
    """The smoothed optimum as JSON data: `ratio` with its 95 % `ci`, `scales`, the surface's `value`, `n`."""
    if optimum is None:
        return None
    return {
        "ratio": optimum.ratio,
        "ci": list(optimum.ci) if optimum.ci else None,
        "scales": optimum.scales,
        "value": optimum.value,
        "n": optimum.n,
    }


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
    answer: Answer | None = None
    repeats_done: int = 0
    repeats_planned: int = 0
    optimum: Optimum | None = None
    positions_note: str | None = None

    def lines(self) -> list[str]:
        counts = ", ".join(f"{state.lower()} {count}" for state, count in self.states.items() if count)
        lines = [f"study {self.name}: {self.finished}/{self.n_trials} finished ({counts or 'no trials'})"]
        if self.positions_note is not None:
            lines.append(self.positions_note)
        if self.repeats_planned:
            lines.append(f"repeats: {self.repeats_done}/{self.repeats_planned} complete")
        if self.answer is None:
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
        if self.ratio is not None and self.optimum is not None and self.optimum.ci is not None:
            low, high = self.optimum.ci
            lines.append(
                f"smoothed optimum: ratio s_{self.ratio[0]}/s_{self.ratio[1]} = {self.optimum.ratio:.3g}, "
                f"95% CI [{low:.3g}, {high:.3g}] (a GP over {self.optimum.n} complete trials)"
            )
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON data; `best` carries the answer's `mean`, `ci` ([low, high] or null) and `n`;
        `optimum` the smoothed optimum (or null); `positions` the physical positions' note (or null)."""
        best = None
        if self.answer is not None:
            best = {**estimate_json(self.answer.best), "value": self.best_value}
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
            "tied": [estimate_json(e) for e in self.answer.tied] if self.answer else [],
            "repeats": {"done": self.repeats_done, "planned": self.repeats_planned},
            "optimum": optimum_json(self.optimum),
            "warnings": self.warnings,
            "positions": self.positions_note,
        }


def summarize_trials(name: str, trials: Sequence[FrozenTrial], space: SearchSpace) -> StudySummary:
    """Summary of the trials of study `name` searched over `space`; states and `finished` count search trials."""
    searched = search_trials(trials)
    summary = StudySummary(
        name=name,
        n_trials=space.n_trials or len(searched),
        metric=space.metric,
        direction=space.direction,
        states=state_counts(searched),
        finished=finished_count(searched),
        ratio=space.ratio,
        repeats_done=sum(is_repeat(trial) for trial in complete_trials(trials)),
        repeats_planned=space.planned_repeats,
        positions_note=space.positions_note,
    )
    summary.answer = study_answer(trials, space.direction, space.ratio)
    if summary.answer is not None:
        best = summary.answer.best
        summary.best_number, summary.best_value, summary.best_params = best.number, best.mean, dict(best.params)
        summary.best_ratio = best.ratio
        summary.warnings = boundary_warnings(space, best.params)
        summary.optimum = smoothed_optimum(trials, space)
    return summary


def summarize(study: optuna.Study, spec: StudySpec | None = None) -> StudySummary:
    """Summary of `study` (its spec from the study's user attrs unless given; imported studies work too)."""
    space = spec.search_space() if spec is not None else SearchSpace.from_spec(study.user_attrs["spec"])
    return summarize_trials(study.study_name, study.get_trials(deepcopy=False), space)
