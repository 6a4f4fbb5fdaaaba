"""The rulebook of a study's trials, used alike by `afpe status`, the REST service and the plots.

- Search trials: every trial but the repeats (user attr `repeat_of`, see repeats.py); `n_trials` counts them.
- Finished: COMPLETE + PRUNED (`FINISHED_STATES`), the count `n_trials` refers to; FAIL is not finished.
- Best: the COMPLETE trial with the best finite value in the study's direction.
- Boundary rule: with u = (log s - log low) / (log high - log low) the best scale's position in its searched
  range, u < 0.1 or u > 0.9 means the optimum may lie outside the range (the published EchoNet search never
  bracketed its optimum); the same test applies to the best ratio s_a / s_b inside the range of reachable
  ratios [low_a / high_b, high_a / low_b].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from afpe.search.spec import PARAM_PREFIX, SearchSpace

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
BOUNDARY_FRACTION = 0.1
REPEAT_OF = "repeat_of"


def is_repeat(trial: FrozenTrial) -> bool:
    """A repeat of a search trial (other seeds, same params), not a search trial."""
    return REPEAT_OF in trial.user_attrs


def search_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials of the search phase (not repeats)."""
    return [trial for trial in trials if not is_repeat(trial)]


def state_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Trials per state, every Optuna state named (zero included), in Optuna's order."""
    return {state.name: sum(trial.state == state for trial in trials) for state in TrialState}


def finished_count(trials: Sequence[FrozenTrial]) -> int:
    """How many trials are finished (COMPLETE or PRUNED)."""
    return sum(trial.state in FINISHED_STATES for trial in trials)


def complete_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials with a finite value."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]


def best_trial(trials: Sequence[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The COMPLETE trial with the best finite value (`direction` 'maximize' or 'minimize'); None if none."""
    done = complete_trials(trials)
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: t.value)


def log2_ratio(params: dict[str, float], ratio: tuple[str, str]) -> float | None:
    """log2(s_a / s_b) of the two named axes; None when a scale is missing or not positive."""
    a, b = (params.get(PARAM_PREFIX + name) for name in ratio)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return math.log2(a / b)


def scale_ratio(params: dict[str, float], ratio: tuple[str, str] | None) -> float | None:
    """s_a / s_b of the two named axes; None without a ratio, or when a scale is missing or not positive."""
    x = log2_ratio(params, ratio) if ratio is not None else None
    return None if x is None else 2.0**x


def ratio_range(space: SearchSpace) -> tuple[float, float]:
    """The reachable ratios s_a / s_b of the space's ratio axes: (low_a / high_b, high_a / low_b).
    ValueError when the space has no ratio."""
    if space.ratio is None:
        raise ValueError("the study has fewer than two scale axes: no ratio")
    a, b = (space.axis(name) for name in space.ratio)
    return a.low / b.high, a.high / b.low


def log_position(value: float, low: float, high: float) -> float:
    """Where `value` lies in [low, high] on a log scale: 0 at low, 1 at high."""
    return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))


def boundary_warnings(space: SearchSpace, params: dict[str, float]) -> list[str]:
    """A warning per searched scale (and for the ratio) whose value in `params` (the best trial's) lies in
    the outer 10 % of its range on a log scale."""
    checks = [(axis.param, params[axis.param], axis.low, axis.high) for axis in space.axes if axis.param in params]
    x = log2_ratio(params, space.ratio) if space.ratio is not None else None
    if x is not None:
        a, b = space.ratio
        checks.append((f"{PARAM_PREFIX}{a}/{PARAM_PREFIX}{b}", 2.0**x, *ratio_range(space)))
    warnings = []
    for name, value, low, high in checks:
        position = log_position(value, low, high)
        if position < BOUNDARY_FRACTION or position > 1 - BOUNDARY_FRACTION:
            edge = "lower" if position < 0.5 else "upper"
            warnings.append(
                f"best {name}={value:.4g} lies in the {edge} {BOUNDARY_FRACTION:.0%} of its range "
                f"[{low:.4g}, {high:.4g}] (log scale): the optimum may lie outside; widen the range"
            )
    return warnings
