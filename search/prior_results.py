"""The priors as a study runs them (`priors.py` computes them): enqueued as its first trials (`enqueue_priors`),
their results (`prior_results`) and the search's gain over the best prior (`prior_gain`), which the summary reports.

Is searching worth it? A prior's values are those of its configuration (its trial, and its repeats when it ranked
among the best); the best prior is the best mean among them. The gain is the search's answer's mean minus the best
prior's (prior minus answer when minimising: > 0 means searching did better) with Welch's 95 % interval, none when
either side ran once (repeats give the answer n >= 2; a prior has n >= 2 only when it was repeated) or the answer is
that prior. The answer is the best of many configurations, so the gain is biased upwards (`GAIN_NOTE`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from afpe.search.analysis import FINISHED_STATES, scale_ratio, search_trials
from afpe.search.priors import PRIOR_KEY, RULES, Prior, names_of, to_run
from afpe.search.repeats import Answer, Estimate, difference, params_key
from afpe.search.spec import SearchSpace

GAIN_NOTE = (
    "the search's answer is the best of its configurations, a prior one configuration: the gain is biased upwards "
    "(repeats with fresh seeds shrink the bias)"
)


def enqueue_priors(study: optuna.Study, priors: tuple[Prior, ...], count: int) -> list[Prior]:
    """Enqueue (Optuna `enqueue_trial`, user attr `prior`: the rules' names) the first `count` of `priors` that no
    search trial finished, waits for or runs, so that they are the next trials asked; returns them. Idempotent:
    a retry after an outage cut it off, or a resume, enqueues none twice (the stale trials of a dead driver are
    FAIL by then, so a prior it left unfinished runs again)."""
    taken = (TrialState.WAITING, TrialState.RUNNING, *FINISHED_STATES)
    trials = search_trials(study.get_trials(deepcopy=False, states=taken))
    enqueued = to_run(priors, (names_of(trial.user_attrs) for trial in trials))[:count]
    for prior in enqueued:
        study.enqueue_trial(prior.params, user_attrs={PRIOR_KEY: list(prior.names)})
    return enqueued


@dataclass(frozen=True)
class PriorResult:
    """A prior (`priors.Prior`) as the study ran it: its search trial `number` and `state` (None: not run yet) and,
    once COMPLETE, its configuration's `estimate` (its trial and any repeats)."""

    names: tuple[str, ...]
    params: dict[str, float]
    ratio: float | None
    number: int | None = None
    state: str | None = None
    estimate: Estimate | None = None
    clipped: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " = ".join(self.names)

    def to_json(self) -> dict[str, Any]:
        """`names`, `label`, `rules` (in words), `params`, `ratio`, `clipped`, `number`, `state` and, once complete,
        `mean`, `ci` (or null with `ci_note`), `n` and `values`."""
        found = self.estimate
        return {
            "names": list(self.names),
            "label": self.label,
            "rules": [RULES.get(name, name) for name in self.names],
            "params": self.params,
            "ratio": self.ratio,
            "clipped": list(self.clipped),
            "number": self.number,
            "state": self.state,
            "mean": found.mean if found else None,
            "ci": list(found.ci) if found and found.ci else None,
            "ci_note": found.ci_note if found else None,
            "n": found.n if found else 0,
            "values": found.values if found else [],
        }


@dataclass(frozen=True)
class PriorGain:
    """What searching gained over the best prior: `difference` (> 0: the search's answer is better, whatever the
    direction) with Welch's 95 % interval `ci` (None with `ci_note` saying why), `n` (answer, prior)."""

    against: PriorResult
    prior_mean: float
    search_mean: float
    difference: float
    ci: tuple[float, float] | None
    ci_note: str | None
    n: tuple[int, int]
    answer_is_prior: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "against": self.against.label,
            "names": list(self.against.names),
            "prior_number": self.against.number,
            "prior_mean": self.prior_mean,
            "search_mean": self.search_mean,
            "difference": self.difference,
            "ci": list(self.ci) if self.ci else None,
            "ci_note": self.ci_note,
            "n": list(self.n),
            "answer_is_prior": self.answer_is_prior,
            "note": GAIN_NOTE,
        }


def prior_results(trials: Sequence[FrozenTrial], space: SearchSpace, answer: Answer | None) -> list[PriorResult]:
    """The priors the study ran (search trials with the user attr `prior`; per set of names the COMPLETE trial, else
    the latest), in trial order, then (with `space.prior`) those of `space.priors` no trial ran yet."""
    estimates = {params_key(e.params): e for e in (answer.estimates if answer else [])}
    clipped = {prior.names: prior.clipped for prior in space.priors}
    chosen: dict[tuple[str, ...], FrozenTrial] = {}
    for trial in search_trials(trials):
        names = names_of(trial.user_attrs)
        if names and not (names in chosen and chosen[names].state == TrialState.COMPLETE):
            chosen[names] = trial
    results = [
        PriorResult(
            names,
            dict(trial.params),
            scale_ratio(trial.params, space.ratio),
            trial.number,
            trial.state.name,
            estimates.get(params_key(trial.params)) if trial.state == TrialState.COMPLETE else None,
            clipped.get(names, ()),
        )
        for names, trial in sorted(chosen.items(), key=lambda item: item[1].number)
    ]
    ran = {name for names in chosen for name in names}
    if space.prior:
        results += [
            PriorResult(p.names, p.params, scale_ratio(p.params, space.ratio), clipped=p.clipped)
            for p in space.priors
            if not ran & set(p.names)
        ]
    return results


def prior_gain(priors: Sequence[PriorResult], answer: Answer | None, direction: str) -> PriorGain | None:
    """The search's answer against the best complete prior (None until both exist): see the module docstring."""
    complete = [p for p in priors if p.estimate is not None]
    if answer is None or not complete:
        return None
    sign = 1 if direction == "maximize" else -1
    best = max(complete, key=lambda p: sign * p.estimate.mean)
    prior, search = best.estimate, answer.best
    found = difference(search, prior) if sign > 0 else difference(prior, search)
    is_prior = params_key(search.params) == params_key(prior.params)
    ci = None if is_prior or found["ci"] is None else tuple(found["ci"])
    note = None
    if is_prior:
        note = "no interval: the search's answer is this prior (searching found no better configuration)"
    elif ci is None:
        once = [side for side, e in (("the search's answer", search), ("the best prior", prior)) if e.n < 2]
        note = f"no interval: {' and '.join(once)} ran once" if once else "no interval: all their runs gave one value"
    gain = 0.0 if is_prior else found["difference"]
    return PriorGain(best, prior.mean, search.mean, gain, ci, note, (search.n, prior.n), is_prior)
