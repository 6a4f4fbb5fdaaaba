"""GET /api/compare: best values of studies that differ only in encoding; GET /api/trend: answers against a
task option."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from afpe.service.api.deps import CrossStudies
from afpe.service.api.params import Slug
from afpe.service.api.schemas import ERRORS, CompareResult, TrendResult

router = APIRouter(tags=["compare"])
Names = Annotated[list[Slug], Query(min_length=1, max_length=12)]
SUMMARY = "Best values of studies that differ only in encoding, with bootstrap CIs"


@router.get("/compare", summary=SUMMARY, response_model=CompareResult, responses=ERRORS)
def compare_studies(studies: CrossStudies, names: Names) -> CompareResult:
    return studies.compare(names)


@router.get(
    "/trend",
    summary="The answers (best ratio with its tied range, best mean with its CI) of studies against the one task "
    "option that varies between them, per encoding",
    response_model=TrendResult,
    responses=ERRORS,
)
def trend_of_studies(studies: CrossStudies, names: Names) -> TrendResult:
    return studies.trend(names)
