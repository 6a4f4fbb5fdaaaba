"""GET /api/specs, /api/specs/{name}: the shipped study specs."""

from __future__ import annotations

from fastapi import APIRouter

from afpe.search.spec import StudySpec
from afpe.service.api.deps import Admission
from afpe.service.api.schemas import ERRORS, SpecSummary

router = APIRouter(prefix="/specs", tags=["specs"])


@router.get("", summary="The shipped study specs", response_model=list[SpecSummary])
def list_specs(admission: Admission) -> list[SpecSummary]:
    return admission.shipped_specs()


@router.get("/{name}", summary="One shipped spec as StudySpec JSON", response_model=StudySpec, responses=ERRORS)
def get_spec(name: str, admission: Admission) -> StudySpec:
    return admission.shipped_spec(name)
