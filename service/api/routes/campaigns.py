"""Campaigns: a base spec × one or two varied fields, started, read, cancelled and resumed as one
(`afpe.service.manager.campaigns`). Mutating routes need `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import PlainTextResponse

from afpe.search.campaign_result import table_csv, table_markdown
from afpe.service.api.deps import CampaignsDep
from afpe.service.api.params import StudyName
from afpe.service.api.schemas import ERRORS, CampaignRequest, CampaignTable

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
TABLE = "the campaign's table: its studies (state, mean, 95 % CI, n, ratios), comparisons and ratio trend"


@router.post(
    "",
    status_code=201,
    summary="Start a campaign: every study validated, then each created and queued (201; 200 when it exists)",
    response_model=CampaignTable,
    responses={
        **ERRORS,
        200: {"model": CampaignTable, "description": "the campaign with this exact spec already exists"},
    },
)
def create_campaign(
    response: Response,
    campaigns: CampaignsDep,
    body: Annotated[CampaignRequest, Body(description="name, base (a spec or a shipped spec's name), vary")],
) -> dict[str, Any]:
    table, created = campaigns.create(body.model_dump(mode="json"))
    if not created:
        response.status_code = 200
    return table


@router.get("", summary="Every campaign's name")
def list_campaigns(campaigns: CampaignsDep) -> list[str]:
    return campaigns.names()


@router.get("/{name}", summary=TABLE, response_model=CampaignTable, responses=ERRORS)
def get_campaign(name: StudyName, campaigns: CampaignsDep) -> dict[str, Any]:
    return campaigns.table(name)


@router.get(
    "/{name}/export",
    summary="The table as CSV (one row per study) or Markdown (for a paper)",
    response_class=PlainTextResponse,
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}, "text/markdown": {"schema": {"type": "string"}}}},
    },
)
def export_campaign(
    name: StudyName, campaigns: CampaignsDep, format: Annotated[Literal["csv", "markdown"], Query()] = "csv"
) -> PlainTextResponse:
    table = campaigns.table(name)
    if format == "csv":
        return PlainTextResponse(table_csv(table), media_type="text/csv")
    return PlainTextResponse(table_markdown(table), media_type="text/markdown")


@router.post(
    "/{name}/cancel",
    summary="Cancel every queued or running study of the campaign",
    response_model=CampaignTable,
    responses=ERRORS,
)
def cancel_campaign(name: StudyName, campaigns: CampaignsDep) -> dict[str, Any]:
    return campaigns.cancel(name)


@router.post(
    "/{name}/resume",
    summary="Resume every failed or cancelled study of the campaign, create those not yet created",
    response_model=CampaignTable,
    responses=ERRORS,
)
def resume_campaign(name: StudyName, campaigns: CampaignsDep) -> dict[str, Any]:
    return campaigns.resume(name)
