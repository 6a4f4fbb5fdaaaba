"""Read models of studies: what `GET /api/...` returns (pydantic, so OpenAPI shows each field)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from afpe.service.manager.records import StudySource, StudyState
from afpe.service.plots.trend import TrendPoint

STALE = "the cluster could not be reached when the state was last refreshed: `state` is the last known one"


class SpecSummary(BaseModel):
    """A shipped spec (`studies/<name>.yaml`); a spec that does not load has only `error`."""

    name: str
    summary: str = ""
    study: str | None = None
    task: str | None = None
    encoding: str | None = None
    n_trials: int | None = None
    error: str | None = None


class BestTrial(BaseModel):
    """The study's answer: the best configuration (a search trial and its repeats), its scales and, with two
    axes, the scale ratio s_a / s_b; `value` = `mean` over its `n` runs, `ci` the 95 % interval (None when it
    cannot be estimated: `ci_note` says why)."""

    number: int
    value: float | None
    params: dict[str, float]
    ratio: float | None = None
    ratio_axes: list[str] | None = None
    mean: float | None = None
    ci: list[float] | None = None
    ci_note: str | None = Field(None, description="why there is no interval (one run, runs all equal)")
    n: int = 1
    values: list[float] = []


class TiedConfiguration(BaseModel):
    """A repeated configuration whose values Welch's t-test cannot tell from the best's (5 %)."""

    number: int
    ratio: float | None
    mean: float
    ci: list[float] | None
    n: int


class SmoothedOptimum(BaseModel):
    """Where a Gaussian process fitted to every complete trial is best: the scale `ratio` s_a / s_b with a 95 %
    interval `ci` (quantiles of the optimum's ratio over posterior draws; None with `ci_note` when they
    coincide), the tried `scales` there (scales[a] / scales[b] = `ratio`), as `params` and per grid axis
    (`grid_scales`, fixed axes included), the surface's `value` there, and the `n` trials it was fitted to."""

    ratio: float | None
    ci: list[float] | None
    ci_note: str | None = None
    scales: dict[str, float]
    params: dict[str, float] = {}
    grid_scales: list[float] | None = None
    value: float
    n: int


class ScalesToUse(BaseModel):
    """The scales the study recommends: the smoothed optimum's configuration, else the best configuration's
    (`source`), tried by search trial `number`; `params` (s_<axis>), `grid_scales` per grid axis, `ratio`, `why`."""

    source: str
    number: int
    params: dict[str, float]
    grid_scales: list[float]
    ratio: float | None
    why: str


class PriorResult(BaseModel):
    """A prior (`search/priors.py`: scales set by a rule from the task's geometry, run as one of the first trials):
    its rules' `names` and `rules` in words, `params`, `ratio`, the params `clipped` to their range, its search
    trial `number` and `state` (null: not run yet) and, once COMPLETE, its configuration's `mean`, 95 % `ci` (or
    null with `ci_note`), `n` and `values`."""

    names: list[str]
    label: str
    rules: list[str] = []
    params: dict[str, float]
    ratio: float | None = None
    clipped: list[str] = []
    number: int | None = None
    state: str | None = None
    mean: float | None = None
    ci: list[float] | None = None
    ci_note: str | None = None
    n: int = 0
    values: list[float] = []


class PriorGain(BaseModel):
    """What searching gained over the best prior (`against`, its `names`): `difference` (> 0: the search's answer is
    better, whatever the direction) of `search_mean` and `prior_mean` with Welch's 95 % interval `ci` (null with
    `ci_note` saying why), `n` = [answer, prior]; `note`: the gain is biased upwards (the answer is a maximum)."""

    against: str
    names: list[str]
    prior_number: int | None = None
    prior_mean: float
    search_mean: float
    difference: float
    ci: list[float] | None = None
    ci_note: str | None = None
    n: list[int]
    answer_is_prior: bool = False
    note: str = ""


class StudyListItem(BaseModel):
    name: str
    state: StudyState
    source: StudySource
    origin: str = Field(
        description="where the study was started: service, cli (`afpe run`) or import (the Optuna study's user "
        "attr `origin`; without it: the service's record, else cli)"
    )
    managed: bool = Field(description="whether the service runs the study's jobs (cancel, resume)")
    holder: str | None = Field(
        None, description="the driver running the study now (its lease holder, e.g. an `afpe run`), else null"
    )
    task: str | None
    encoding: str | None
    finished: int = Field(description="COMPLETE + PRUNED trials")
    n_trials: int
    best_value: float | None
    metric: str
    created_at: dt.datetime
    stale: bool = Field(False, description=STALE)


class StudyStatus(BaseModel):
    """A study's state, trial counts (every Optuna state), progress, ETA, best trial and warnings."""

    name: str
    state: StudyState
    source: StudySource
    origin: str = Field(
        description="where the study was started: service, cli (`afpe run`) or import (the Optuna study's user "
        "attr `origin`; without it: the service's record, else cli)"
    )
    managed: bool = Field(description="whether the service runs the study's jobs (cancel, resume)")
    holder: str | None = Field(
        None, description="the driver running the study now (its lease holder, e.g. an `afpe run`), else null"
    )
    job_id: str | None
    attempt: int
    trials: dict[str, int] = Field(description="trials per Optuna state")
    finished: int = Field(description="COMPLETE + PRUNED trials: the count n_trials refers to")
    n_trials: int
    progress: float
    eta_seconds: float | None
    metric: str
    direction: str
    best: BestTrial | None
    ratio_range: list[float] | None = Field(None, description="ratios of the best and the configurations tied with it")
    tied: list[TiedConfiguration] = []
    repeats: dict[str, int] = Field(default_factory=dict, description="repeats done and planned")
    optimum: SmoothedOptimum | None = Field(None, description="the smoothed optimum (>= 6 complete trials)")
    optimum_note: str | None = Field(None, description="why there is no smoothed optimum yet (else null)")
    fixed: dict[str, float] = Field(default_factory=dict, description="grid axes no searched axis drives: scale")
    use: ScalesToUse | None = Field(None, description="the scales to use (the smoothed optimum, else the best)")
    warnings: list[str] = Field(description="the best scale or ratio in the outer 10 % of its range (log scale)")
    positions: str | None = Field(
        None, description="with trainer.positions physical: how a scale reads, its unit named (else null)"
    )
    priors: list[PriorResult] = Field(
        default_factory=list, description="the priors (scales set by rules from the task's geometry): their results"
    )
    prior_gain: PriorGain | None = Field(None, description="the search's gain over the best prior (else null)")
    priors_note: str | None = Field(None, description="why there are no priors, or fewer than the rules (else null)")
    error: str | None
    latest_error: str | None = Field(
        None, description="the error of the latest FAIL trial (sanitised), shown while the study runs"
    )
    note: str | None = Field(
        None, description="why the current attempt was resubmitted (a lost Ray job, a storage outage)"
    )
    spec: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    stale: bool = Field(False, description=STALE)
    version: str = Field(
        "",
        description="changes whenever the study's spec or trials change what it shows (the study page fetches "
        "its plots again only when it changes, each with its ETag: 304 for a figure that stayed the same)",
    )


class TrialRowView(BaseModel):
    """A row of the trials table: a trial without its learning curve."""

    number: int
    state: str = Field(description="Optuna's trial state: COMPLETE, PRUNED, FAIL, RUNNING or WAITING")
    value: float | None = Field(description="the trial's metric (COMPLETE trials)")
    params: dict[str, Any] = Field(description="the scales searched, s_<axis>")
    ratio: float | None = Field(None, description="s_a / s_b of the study's ratio axes")
    seed: int | None = Field(None, description="the training seed")
    repeat_of: int | None = Field(None, description="the search trial this trial repeats with another seed")
    seconds: float | None = Field(None, description="training wall time")
    epochs: int | None = Field(None, description="epochs reported")


class TrialItem(TrialRowView):
    """A whole trial: its row, user attrs (`error` sanitised as a study's is) and learning curve."""

    user_attrs: dict[str, Any]
    intermediate_values: dict[int, float] = Field(description="the metric per epoch")
    datetime_start: dt.datetime | None
    datetime_complete: dt.datetime | None


class TrialDetail(TrialItem):
    """One trial for its page: the sanitised `error` of a FAIL and the name of its log file."""

    error: str | None = Field(None, description="why the trial failed (sanitised: no paths, addresses, secrets)")
    log: str | None = Field(
        None, description="the trial's log file, in <tune dir>/<experiment>/logs/ where the driver ran"
    )
    checkpoint: str | None = Field(
        None, description="URL of the trial's kept checkpoint (its best epoch's model file); None when none is kept"
    )


class TrialsPage(BaseModel):
    total: int = Field(description="trials matching the `state` filter")
    offset: int
    limit: int
    sort: str = Field("number", description="the column sorted by (missing values last)")
    order: str = Field("asc", description="asc or desc")
    items: list[TrialItem]


class BestEstimateView(BaseModel):
    """A study's best configuration as its status gives it (`search.summary`): mean over `repeats` (= `n`) runs
    and its 95 % Student-t interval [`low`, `high`] (None, with `ci_note`, when it cannot be estimated)."""

    params: dict[str, float]
    mean: float
    repeats: int
    low: float | None
    high: float | None
    number: int | None = None
    ratio: float | None = None
    ci_note: str | None = None


class CompareRow(BaseModel):
    name: str
    encoding: str
    state: StudyState
    metric: str
    direction: str
    best: BestEstimateView | None


class CompareResult(BaseModel):
    studies: list[CompareRow]
    comparable: bool = Field(description="the studies differ only in encoding")
    differences: list[str]
    confidence: float


class TrendResult(BaseModel):
    option: str = Field(description="the task option that varies between the studies (dotted path)")
    metric: str
    direction: str
    ratio: list[str] | None
    points: list[TrendPoint]
    differences: list[str] = Field(description="other spec fields in which the studies differ ([]: comparable)")
