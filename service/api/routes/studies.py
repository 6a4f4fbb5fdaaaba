"""Studies: start (from a StudySpec), import (from a CSV), list, status, cancel, resume. Mutating routes
need `Authorization: Bearer <token>`, checked before the body is read (`afpe.service.api.guard`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Form, Response, UploadFile

from afpe.search.spec import SLUG_PATTERN, StudySpec
from afpe.service.api.deps import Importer, Lifecycle, Statuses
from afpe.service.api.json_depth import MAX_JSON_DEPTH, json_depth
from afpe.service.api.params import StudyName
from afpe.service.api.schemas import ERRORS, ResumeRequest, StudyListItem, StudyStatus
from afpe.service.errors import InvalidInput

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post(
    "",
    status_code=201,
    summary="Start a study from a StudySpec (201 new; 200 when the same spec already exists; 409 other spec)",
    response_model=StudyStatus,
    responses={**ERRORS, 200: {"model": StudyStatus, "description": "the study with this exact spec already exists"}},
)
def create_study(
    response: Response,
    lifecycle: Lifecycle,
    statuses: Statuses,
    spec: Annotated[StudySpec, Body(description="a StudySpec, e.g. GET /api/specs/quickstart")],
) -> StudyStatus:
    record, created = lifecycle.create(spec.model_dump(mode="json"))
    if not created:
        response.status_code = 200
    return statuses.status_of(record)


@router.get("", summary="Every study with state, progress and best value", response_model=list[StudyListItem])
def list_studies(statuses: Statuses) -> list[StudyListItem]:
    return statuses.list()


@router.post(
    "/import",
    status_code=201,
    summary="Create a finished study from a CSV of earlier trials (s_* scale columns + value)",
    response_model=StudyStatus,
    responses=ERRORS,
)
def import_study(
    importer: Importer,
    statuses: Statuses,
    file: Annotated[UploadFile, File(description="CSV: s_<axis> columns, value; optional state, seed, pe_seed")],
    name: Annotated[str, Form(pattern=SLUG_PATTERN)],
    encoding: Annotated[str, Form(max_length=64)] = "afpe",
    direction: Annotated[Literal["maximize", "minimize"], Form()] = "maximize",
    metric: Annotated[
        str | None,
        Form(min_length=1, max_length=64, description="default: the task's default, else 'value'"),
    ] = None,
    task: Annotated[str | None, Form(max_length=64)] = None,
    task_options: Annotated[str, Form(max_length=4000, description='JSON object, e.g. {"anisotropy": [1, 1, 4]}')] = "",
    bounds: Annotated[
        str,
        Form(
            max_length=4000,
            description='the searched range per axis, JSON, e.g. {"time": [0.1, 1.0], "space": [0.1, 1.0]} '
            "(finite, 0 < low < high, every scale inside); axes not named get their observed range. Boundary "
            "warnings judge the best against these ranges",
        ),
    ] = "",
) -> StudyStatus:
    content = file.file.read()  # bounded by the service's upload limit; a sync route: off the event loop
    options = _json_object("task_options", task_options)
    searched = _json_object("bounds", bounds)
    record = importer.import_csv(name, content, encoding, direction, metric, task, options, searched)
    return statuses.status_of(record)


@router.get(
    "/{name}",
    summary="State, trial counts, best trial, progress, ETA, warnings, spec, error",
    response_model=StudyStatus,
    responses=ERRORS,
)
def get_study(name: StudyName, statuses: Statuses) -> StudyStatus:
    return statuses.status(name)


@router.post(
    "/{name}/cancel",
    summary="Stop the study's job",
    response_model=StudyStatus,
    responses=ERRORS,
)
def cancel_study(name: StudyName, lifecycle: Lifecycle, statuses: Statuses) -> StudyStatus:
    return statuses.status_of(lifecycle.cancel(name))


@router.post(
    "/{name}/resume",
    summary="Resubmit a failed or cancelled study with --resume (optionally with more trials); a study `afpe run` "
    "made and no driver runs is adopted: the service runs its jobs from then on (409 naming the driver running it)",
    response_model=StudyStatus,
    responses=ERRORS,
)
def resume_study(
    name: StudyName,
    lifecycle: Lifecycle,
    statuses: Statuses,
    body: Annotated[ResumeRequest | None, Body()] = None,
) -> StudyStatus:
    return statuses.status_of(lifecycle.resume(name, body.n_trials if body else None))


def _json_object(field: str, text: str) -> dict[str, Any]:
    """A form field holding a JSON object ('' = {}) at most MAX_JSON_DEPTH deep; InvalidInput naming the field
    otherwise."""
    if not text.strip():
        return {}
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InvalidInput(f"{field}: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"{field}: not JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{field}: expected a JSON object, got {type(value).__name__}")
    return value
