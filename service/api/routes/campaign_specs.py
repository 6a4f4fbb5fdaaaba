"""GET /api/campaign-specs, /api/campaign-specs/{name}: the shipped campaigns, to POST to /api/campaigns as they
are (with `overrides`) or changed."""

from __future__ import annotations

from fastapi import APIRouter

from afpe.search.campaign import CampaignSpec
from afpe.service.api.deps import CampaignsDep
from afpe.service.api.params import StudyName
from afpe.service.api.schemas import ERRORS

router = APIRouter(prefix="/campaign-specs", tags=["campaigns"])


@router.get("", summary="The shipped campaigns: name and description (or the error of one that does not load)")
def list_campaign_specs(campaigns: CampaignsDep) -> list[dict[str, str]]:
    return campaigns.shipped()


@router.get(
    "/{name}", summary="One shipped campaign as CampaignSpec JSON", response_model=CampaignSpec, responses=ERRORS
)
def get_campaign_spec(name: StudyName, campaigns: CampaignsDep) -> CampaignSpec:
    return campaigns.shipped_campaign(name)
