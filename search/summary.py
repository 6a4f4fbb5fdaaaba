"""The study's answer, the one function every reader uses (`summarize_trials`): counts per state of its search
trials, repeats done/planned, the best configuration (mean, 95 % interval and n, its scales and ratio, and the
ratios tied with it: see `repeats.py`), the smoothed optimum (the tried configuration at the centre of where a GP
fitted to every trial puts the optimum, its ratio with a 95 % interval and the scales that give that ratio: see
`surface.py`), the grid axes no search drives (`fixed`), the scales to use, the boundary warnings, all by the
rules of `analysis.py`, and the priors (`prior_results.py`: each prior's result, and the search's gain over the best
prior with Welch's 95 % interval, `repeats.difference`). An interval that cannot be estimated is not printed: its
`ci_note` says why.
`afpe status` (text and --json), the REST status, the study page, compare, trend and the MONAI export read it.

The scales to use (`use`): the smoothed optimum's when there is one (>= 6 complete trials), else the best
configuration's. The best configuration is the extreme of noisy values (the winner's curse): its ratio moves
with the seed (quickstart, seeds 0-2: 5.9, 1.62, 4.94), while the surface pools neighbouring trials and moves
less (5.66, 3.0, 4.1). Both are tried configurations, so both have measured values and a kept pe_seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
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
from afpe.search.prior_results import PriorGain, PriorResult, prior_gain, prior_results
from afpe.search.repeats import Answer, Estimate, params_key, study_answer
from afpe.search.spec import PARAM_PREFIX, SearchSpace, StudySpec
from afpe.search.surface import MIN_TRIALS, Optimum, smoothed_optimum

WHY_OPTIMUM = (
    "the smoothed optimum pools every trial, so one lucky seed cannot move it; the best configuration is the "
    "extreme of noisy values and its ratio moves with the seed"
)
WHY_BEST = f"no smoothed optimum yet (it needs {MIN_TRIALS} complete trials): the best configuration's scales"
PRIORS_OFF = "off (the spec's `prior` is false, or the study predates priors): the rules' configurations were not run"


def estimate_json(estimate: Estimate) -> dict[str, Any]:
    """One configuration's estimate as JSON data (`ci`: [low, high], or null with `ci_note` saying why)."""
    return {
        "number": estimate.number,
        "mean": estimate.mean,
        "ci": list(estimate.ci) if estimate.ci else None,
        "ci_note": estimate.ci_note,
        "n": estimate.n,
        "values": estimate.values,
        "params": estimate.params,
        "ratio": estimate.ratio,
    }


def optimum_json(optimum: Optimum | None, space: SearchSpace | None = None) -> dict[str, Any] | None:
    """The smoothed optimum as JSON data: `ratio` (= scales[a] / scales[b]) with its 95 % `ci` (or null with
    `ci_note`), `scales` per searched axis, `params` (s_<axis>), `grid_scales` (per grid axis, fixed ones
    included: with `space`), the surface's `value`, `n`."""
    if optimum is None:
        return None
    params = {PARAM_PREFIX + name: value for name, value in optimum.scales.items()}
    return {
        "ratio": optimum.ratio,
        "ci": list(optimum.ci) if optimum.ci else None,
        "ci_note": optimum.ci_note,
        "scales": optimum.scales,
        "params": params,
        "grid_scales": space.scales_for(params) if space is not None else None,
        "value": optimum.value,
        "n": optimum.n,
    }


@dataclass(frozen=True)
class ScalesToUse:
    """The scales the study recommends (see the module docstring): `source` "smoothed optimum" or "best
    configuration", the search trial `number` that tried them, `params` (s_<axis>), `grid_scales` (per grid axis,
    fixed ones included), `ratio` and `why`."""

    source: str
    number: int
    params: dict[str, float]
    grid_scales: list[float]
    ratio: float | None
    why: str


def scales_to_use(answer: Answer, optimum: Optimum | None, space: SearchSpace) -> ScalesToUse:
    """The smoothed optimum's configuration when there is one, else the best configuration's."""
    if optimum is None:
        best = answer.best
        return ScalesToUse(
            "best configuration", best.number, best.params, space.scales_for(best.params), best.ratio, WHY_BEST
        )
    params = {PARAM_PREFIX + name: value for name, value in optimum.scales.items()}
    key = params_key(params)
    number = next((e.number for e in answer.estimates if params_key(e.params) == key), answer.best.number)
    return ScalesToUse("smoothed optimum", number, params, space.scales_for(params), optimum.ratio, WHY_OPTIMUM)


def _scales_text(params: dict[str, float], fixed: dict[str, float]) -> str:
    """'s_d0=0.1495, s_d1=0.8815, d2=1 (fixed)'."""
    shown = [f"{key}={value:.4g}" for key, value in params.items()]
    return ", ".join([*shown, *(f"{name}={value:.4g} (fixed)" for name, value in fixed.items())])


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
    fixed: dict[str, float] = field(default_factory=dict)  # grid axes no searched axis drives: their scale
    use: ScalesToUse | None = None
    optimum_note: str | None = None  # why there is no smoothed optimum (None when there is one or no axes)
    space: SearchSpace | None = None
    priors: list[PriorResult] = field(default_factory=list)
    prior_gain: PriorGain | None = None
    priors_note: str | None = None  # why there are no priors, or fewer than the rules (else None)

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
            scales = _scales_text(self.best_params, self.fixed)
            value = f"{self.metric}={self.best_value:.4g} ({self.direction})"
            sure = f", mean of n={best.n}, 95% CI [{best.ci[0]:.4g}, {best.ci[1]:.4g}]" if best.ci else ""
            note = f" ({best.ci_note})" if best.ci_note else ""
            lines.append(f"best: trial {self.best_number} {value}{sure} at {scales}{note}")
            if self.ratio is not None and self.best_ratio is not None:
                line = f"ratio s_{self.ratio[0]}/s_{self.ratio[1]} = {self.best_ratio:.4g}"
                if self.answer.ratio_range is not None and self.answer.repeated:
                    low, high = self.answer.ratio_range
                    line += (
                        f"; ratios not distinguishable from it: [{low:.4g}, {high:.4g}] "
                        f"({len(self.answer.tied)} of {self.answer.repeated} repeated configurations)"
                    )
                lines.append(line)
        if self.optimum is not None:
            at = _scales_text({PARAM_PREFIX + k: v for k, v in self.optimum.scales.items()}, self.fixed)
            line = f"smoothed optimum (a GP over {self.optimum.n} complete trials): "
            if self.ratio is not None and self.optimum.ratio is not None:
                line += f"ratio s_{self.ratio[0]}/s_{self.ratio[1]} = {self.optimum.ratio:.4g}, "
                if self.optimum.ci is not None:
                    line += f"95% CI [{self.optimum.ci[0]:.4g}, {self.optimum.ci[1]:.4g}], "
            lines.append(line + f"at {at}" + (f" ({self.optimum.ci_note})" if self.optimum.ci_note else ""))
        elif self.optimum_note is not None:
            lines.append(f"smoothed optimum: {self.optimum_note}")
        if self.use is not None:
            scales = _scales_text(self.use.params, self.fixed)
            lines.append(f"scales to use: {scales}, the {self.use.source} (trial {self.use.number}): {self.use.why}")
        lines.extend(self._prior_lines())
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines

    def _prior_lines(self) -> list[str]:
        """The priors' results and the search's gain over the best prior (or why there are no priors)."""
        lines = [f"priors: {self.priors_note}"] if self.priors_note else []
        if self.priors:
            lines.append("priors (the first trials, scales set by rules from the task's geometry):")
        for prior in self.priors:
            at = _scales_text(prior.params, {})
            ratio = f", ratio {prior.ratio:.4g}" if prior.ratio is not None else ""
            found = prior.estimate
            if found is not None:
                sure = f", mean of n={found.n}, 95% CI [{found.ci[0]:.4g}, {found.ci[1]:.4g}]" if found.ci else ""
                lines.append(
                    f"  {prior.label}: trial {prior.number} {self.metric}={found.mean:.4g}{sure} at {at}{ratio}"
                )
            else:
                state = "not run yet" if prior.number is None else f"trial {prior.number} {prior.state.lower()}"
                lines.append(f"  {prior.label}: {state}, at {at}{ratio}")
        gain = self.prior_gain
        if gain is not None:
            lower = " (gain = prior - answer: lower is better)" if self.direction == "minimize" else ""
            against = f"{gain.against.label}, {gain.prior_mean:.4g}"
            interval = f", 95% CI [{gain.ci[0]:.3g}, {gain.ci[1]:.3g}]" if gain.ci else f" ({gain.ci_note})"
            gained = f"searching gained {gain.difference:+.3g} {self.metric}{lower}"
            lines.append(f"{gained} over the best prior ({against}){interval}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON data; `best` carries the answer's `mean`, `ci` ([low, high] or null with `ci_note`)
        and `n`; `optimum` the smoothed optimum (or null, `optimum_note` saying why); `fixed` the grid axes no
        searched axis drives; `use` the scales to use; `positions` the physical positions' note (or null); `priors` each
        prior's result (`PriorResult.to_json`), `prior_gain` the search's gain over the best prior (or null),
        `priors_note` why there are no priors or fewer than the rules (or null)."""
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
            "optimum": optimum_json(self.optimum, self.space),
            "optimum_note": self.optimum_note,
            "fixed": self.fixed,
            "use": asdict(self.use) if self.use is not None else None,
            "warnings": self.warnings,
            "positions": self.positions_note,
            "priors": [prior.to_json() for prior in self.priors],
            "prior_gain": self.prior_gain.to_json() if self.prior_gain is not None else None,
            "priors_note": self.priors_note,
        }


def summarize_trials(name: str, trials: Sequence[FrozenTrial], space: SearchSpace) -> StudySummary:
    """The study's answer (see the module docstring) from the trials of study `name` searched over `space`;
    states and `finished` count search trials."""
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
        fixed=space.fixed_scales(),
        space=space,
    )
    summary.answer = study_answer(trials, space.direction, space.ratio)
    if summary.answer is not None:
        best = summary.answer.best
        summary.best_number, summary.best_value, summary.best_params = best.number, best.mean, dict(best.params)
        summary.best_ratio = best.ratio
        summary.warnings = boundary_warnings(space, best.params)
        summary.optimum = smoothed_optimum(trials, space)
        summary.use = scales_to_use(summary.answer, summary.optimum, space)
    summary.priors = prior_results(trials, space, summary.answer)
    summary.prior_gain = prior_gain(summary.priors, summary.answer, space.direction)
    ran = any(p.number is not None for p in summary.priors)
    summary.priors_note = PRIORS_OFF if space.priors and not space.prior and not ran else space.priors_note
    done = len(complete_trials(trials))
    if summary.optimum is None and space.axes and done < MIN_TRIALS:
        summary.optimum_note = f"not estimable: it needs {MIN_TRIALS} complete trials, {done} so far"
    return summary


def summarize(study: optuna.Study, spec: StudySpec | None = None) -> StudySummary:
    """Summary of `study` (its spec from the study's user attrs unless given; imported studies work too)."""
    space = spec.search_space() if spec is not None else SearchSpace.from_spec(study.user_attrs["spec"])
    return summarize_trials(study.study_name, study.get_trials(deepcopy=False), space)
