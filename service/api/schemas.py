"""Request and response bodies of the REST API. The read models of studies live with the manager
(`afpe.service.manager.views`) and are re-exported here; the request body of POST /api/studies is
`afpe.search.StudySpec` itself."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from afpe.search.campaign import CampaignSpec
from afpe.service.manager.views import (
    BestEstimateView,
    BestTrial,
    CompareResult,
    CompareRow,
    SpecSummary,
    StudyListItem,
    StudyStatus,
    TiedConfiguration,
    TrendResult,
    TrialDetail,
    TrialItem,
    TrialRowView,
    TrialsPage,
)

__all__ = [
    "BestEstimateView",
    "BestTrial",
    "CompareResult",
    "CompareRow",
    "ErrorBody",
    "Health",
    "PlotlyFigure",
    "ResumeRequest",
    "SpecSummary",
    "StudyListItem",
    "StudyStatus",
    "TiedConfiguration",
    "TrendResult",
    "TrialDetail",
    "TrialItem",
    "TrialRowView",
    "TrialsPage",
]


class Health(BaseModel):
    status: str = "ok"


class ErrorBody(BaseModel):
    """Every error: a message naming the field or resource (422s add pydantic's `detail`)."""

    error: str
    detail: list[dict[str, Any]] | None = None


class ResumeRequest(BaseModel):
    """Optional body of a resume: raise n_trials to run more trials than the spec asked for."""

    n_trials: int | None = Field(None, ge=1, le=10_000)


class CampaignRequest(CampaignSpec):
    """A campaign (`afpe.search.campaign.CampaignSpec`) and `--set`-style overrides of its base."""

    overrides: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=64, description="`key=value` changes of the base spec, e.g. n_trials=3"
    )


class CampaignRatios(BaseModel):
    """A scaled encoding's best ratio with the tied range, and the smoothed optimum with its interval."""

    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    optimum_ratio: float | None
    optimum_low: float | None
    optimum_high: float | None


class CampaignStudyRow(CampaignRatios):
    """One study of a campaign (`afpe.search.campaign_result.study_row`): null where nothing is known yet or no
    interval can be estimated."""

    study: str
    property: str
    encoding: str
    state: str
    finished: int
    n_trials: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class CampaignComparison(BaseModel):
    """The lead encoding minus another at one property value: difference of means, Welch's 95 % CI, n each."""

    property: str
    lead: str
    against: str
    difference: float | None
    ci: list[float] | None
    n: list[int] | None


class CampaignTrendPoint(CampaignRatios):
    property: str
    encoding: str


class CampaignTable(BaseModel):
    """A campaign's result (`afpe.search.campaign_result.campaign_table`)."""

    campaign: str
    description: str
    vary: dict[str, list[Any]]
    property: list[str]
    encodings: list[str]
    state: str
    studies: list[CampaignStudyRow]
    comparisons: list[CampaignComparison]
    trend: list[CampaignTrendPoint]
    note: str


class PlotlyFigure(BaseModel):
    """A Plotly figure as JSON (`Plotly.newPlot(div, figure.data, figure.layout)`)."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]


#: `responses=` of routes that can fail: every error body is an ErrorBody.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "missing or wrong API token"),
        (404, "no such study or spec"),
        (409, "conflicts with the study's state or another spec"),
        (422, "invalid input, naming the field"),
        (503, "the cluster could not be reached (a new or resumed study is recorded and submitted later)"),
    )
}
