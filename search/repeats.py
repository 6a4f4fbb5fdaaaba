"""Repeats and the study's answer: which configuration is best, how sure, and which ratios tie with it.

After the search phase, the `top_k` best COMPLETE search trials are trained again `seeds` times, repeat i
(1-based) with `seed + 1000 i` and `pe_seed + 1000 i`, so repeats of studies with seeds 0, 1, 2 never share a
draw. Each repeat is its own Optuna trial with the same params and user attrs `repeat_of` (the search trial's
number), `repeat` (i), `seed` and `pe_seed`.

The answer: a configuration's values are those of its COMPLETE search trials with the same params (imported
seeds of one configuration without `repeat_of`) and of their COMPLETE repeats. Its estimate is the mean with a
95 % Student-t interval, mean ± t(0.975, n-1) s / sqrt(n); with one value, or n values all equal (s = 0), no
interval is claimed and `Estimate.ci_note` says why. When any configuration
has repeats, the best is the best *mean* among those with n >= 2 (a single lucky run cannot win against
means); configurations whose values a two-sided Welch t-test cannot tell from the best's at the 5 % level are
"indistinguishable", and the range of their scale ratios (best included) is the ratio range the data support.
Without repeats the best is the best single trial, with n = 1 and no interval.

Two configurations (or studies) are compared by the difference of their means with Welch's 95 % interval
(`difference`: a campaign's encodings, a study's search against its best prior).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from afpe.search.analysis import REPEAT_OF, complete_trials, is_repeat, scale_ratio, search_trials
from afpe.search.spec import StudySpec

REPEAT_SEED_STRIDE = 1000
CONFIDENCE = 0.95


def repeat_seeds(spec: StudySpec, index: int) -> tuple[int, int]:
    """(seed, pe_seed) of repeat `index` (1-based)."""
    return spec.seed + REPEAT_SEED_STRIDE * index, spec.pe_seed + REPEAT_SEED_STRIDE * index


@dataclass(frozen=True)
class PlannedRepeat:
    """One repeat still to run: the params of search trial `repeat_of`, trained with other seeds."""

    repeat_of: int
    index: int
    params: dict[str, float]
    seed: int
    pe_seed: int


def params_key(params: dict[str, float]) -> tuple:
    """One configuration's identity: its params, rounded to 12 digits (a CSV's round trip keeps them)."""
    return tuple(sorted((name, round(value, 12)) for name, value in params.items()))


def ranked(trials: Sequence[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """COMPLETE search trials with a finite value, best first."""
    return sorted(complete_trials(search_trials(trials)), key=lambda t: t.value, reverse=direction == "maximize")


def plan_repeats(spec: StudySpec, trials: Sequence[FrozenTrial]) -> list[PlannedRepeat]:
    """The repeats `spec.repeats` asks for that have no COMPLETE trial yet (none without a repeats section)."""
    if spec.repeats is None:
        return []
    done = {
        (t.user_attrs[REPEAT_OF], t.user_attrs.get("repeat"))
        for t in trials
        if is_repeat(t) and t.state == TrialState.COMPLETE
    }
    plan = []
    for trial in ranked(trials, spec.direction)[: spec.repeats.top_k]:
        for index in range(1, spec.repeats.seeds + 1):
            if (trial.number, index) not in done:
                seed, pe_seed = repeat_seeds(spec, index)
                plan.append(PlannedRepeat(trial.number, index, dict(trial.params), seed, pe_seed))
    return plan


@dataclass(frozen=True)
class Estimate:
    """One configuration (a search trial and its repeats): its values, mean and 95 % interval (None for n = 1)."""

    number: int
    params: dict[str, float]
    ratio: float | None
    values: list[float]
    mean: float
    ci: tuple[float, float] | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def ci_note(self) -> str | None:
        """Why there is no interval (None when there is one)."""
        if self.ci is not None:
            return None
        if self.n == 1:
            return "interval not estimable: one run (no repeats)"
        return f"interval not estimable: its {self.n} runs gave the same value"


def estimate(number: int, params: dict[str, float], values: list[float], ratio: float | None) -> Estimate:
    """Mean and Student-t 95 % interval of `values` (none for a single value or values all equal)."""
    mean = statistics.fmean(values)
    ci = None
    if len(values) >= 2 and statistics.stdev(values) > 0:
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        ci = (mean - half, mean + half)
    return Estimate(number, params, ratio, values, mean, ci)


def indistinguishable(a: Estimate, b: Estimate, alpha: float = 1 - CONFIDENCE) -> bool:
    """A two-sided Welch t-test cannot reject equal means at level `alpha` (needs n >= 2 on both sides)."""
    if a.n < 2 or b.n < 2:
        return False
    spread = statistics.variance(a.values) / a.n + statistics.variance(b.values) / b.n
    if spread == 0:
        return a.mean == b.mean
    return bool(stats.ttest_ind(a.values, b.values, equal_var=False).pvalue >= alpha)


def difference(a: Estimate | None, b: Estimate | None) -> dict[str, Any] | None:
    """Mean of `a` minus mean of `b` with Welch's 95 % interval (null when either has n < 2 or both are
    constant: no interval can be estimated)."""
    if a is None or b is None:
        return None
    result: dict[str, Any] = {"difference": a.mean - b.mean, "ci": None, "n": [a.n, b.n]}
    if a.n >= 2 and b.n >= 2 and (len(set(a.values)) > 1 or len(set(b.values)) > 1):
        interval = stats.ttest_ind(a.values, b.values, equal_var=False).confidence_interval(CONFIDENCE)
        result["ci"] = [float(interval.low), float(interval.high)]
    return result


@dataclass
class Answer:
    """The best configuration, the configurations tied with it (best first) and the ratio range they span."""

    best: Estimate
    tied: list[Estimate] = field(default_factory=list)
    ratio_range: tuple[float, float] | None = None
    repeated: int = 0  # configurations with n >= 2
    estimates: list[Estimate] = field(default_factory=list)  # every configuration, best single value first


def study_answer(trials: Sequence[FrozenTrial], direction: str, ratio: tuple[str, str] | None) -> Answer | None:
    """The study's answer from its trials (None before the first COMPLETE search trial); `ratio` names the two
    axes whose scale ratio is reported. A configuration is named by its best search trial."""
    candidates = ranked(trials, direction)
    if not candidates:
        return None
    repeats: dict[int, list[float]] = {}
    for trial in complete_trials(trials):
        if is_repeat(trial):
            repeats.setdefault(trial.user_attrs[REPEAT_OF], []).append(trial.value)
    configurations: dict[tuple, list[FrozenTrial]] = {}  # best single value first, as `candidates`
    for trial in candidates:
        configurations.setdefault(params_key(trial.params), []).append(trial)

    estimates = [
        estimate(
            group[0].number,
            dict(group[0].params),
            [value for t in group for value in (t.value, *repeats.get(t.number, []))],
            scale_ratio(group[0].params, ratio),
        )
        for group in configurations.values()
    ]
    repeated = [e for e in estimates if e.n >= 2]
    sign = -1 if direction == "maximize" else 1
    best = min(repeated or estimates[:1], key=lambda e: sign * e.mean)
    tied = [best, *(e for e in repeated if e is not best and indistinguishable(best, e))]
    ratios = [e.ratio for e in tied if e.ratio is not None]
    return Answer(best, tied, (min(ratios), max(ratios)) if ratios else None, len(repeated), estimates)


def best_configuration(trials: Sequence[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The search trial of the study's answer: the best mean over repeats, or without repeats the best trial."""
    answer = study_answer(trials, direction, ratio=None)
    return None if answer is None else next(t for t in trials if t.number == answer.best.number)
