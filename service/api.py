"""REST routes under /api. Mutating routes need `Authorization: Bearer <token>` (see `app.require_token`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from afpe.search.spec import SLUG_PATTERN
from afpe.service.auth import require_token
from afpe.service.errors import InvalidInput
from afpe.service.plot_figures import PLOT_KINDS
from afpe.service.studies import StudyService

MAX_UPLOAD_BYTES = 20 * 2**20
PlotKind = Enum("PlotKind", {kind: kind for kind in PLOT_KINDS}, type=str)
Name = Annotated[str, Field(pattern=SLUG_PATTERN)]

router = APIRouter(prefix="/api")


def service(request: Request) -> StudyService:
    return request.app.state.studies


Service = Annotated[StudyService, Depends(service)]


class ResumeRequest(BaseModel):
    """Optional body of a resume: raise n_trials to run more trials than the spec asked for."""

    n_trials: int | None = Field(None, ge=1, le=10_000)


@router.get("/specs", summary="The shipped study specs")
def list_specs(studies: Service) -> list[dict[str, Any]]:
    return studies.shipped_specs()


@router.get("/specs/{name}", summary="One shipped spec as StudySpec JSON")
def get_spec(name: str, studies: Service) -> dict[str, Any]:
    return studies.shipped_spec(name).model_dump(mode="json")


@router.post(
    "/studies",
    status_code=201,
    dependencies=[Depends(require_token)],
    summary="Start a study from a StudySpec (201 new; 200 when the same spec already exists; 409 other spec)",
    responses={200: {"description": "the study with this exact spec already exists"}},
)
def create_study(
    response: Response,
    studies: Service,
    spec: Annotated[dict[str, Any], Body(description="a StudySpec, e.g. GET /api/specs/quickstart")],
) -> dict[str, Any]:
    status, created = studies.create(spec)
    if not created:
        response.status_code = 200
    return status


@router.get("/studies", summary="Every study with state, progress and best value")
def list_studies(studies: Service) -> list[dict[str, Any]]:
    return studies.list()


@router.post("/studies/import", status_code=201, dependencies=[Depends(require_token)],
             summary="Create a finished study from a CSV of earlier trials (s_* scale columns + value)")  # fmt: skip
async def import_study(
    studies: Service,
    file: Annotated[UploadFile, File(description="CSV: s_<axis> columns, value; optional state, seed, pe_seed")],
    name: Annotated[str, Form(pattern=SLUG_PATTERN)],
    encoding: Annotated[str, Form(max_length=64)] = "afpe",
    direction: Annotated[Literal["maximize", "minimize"], Form()] = "maximize",
    metric: Annotated[str, Form(min_length=1, max_length=64)] = "value",
    task: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, Any]:
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"file: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    return studies.import_csv(name, content, encoding, direction, metric, task)


@router.get("/studies/{name}", summary="State, trial counts, best trial, progress, ETA, warnings, spec, error")
def get_study(name: str, studies: Service) -> dict[str, Any]:
    return studies.status(name)


@router.post("/studies/{name}/cancel", dependencies=[Depends(require_token)], summary="Stop the study's job")
def cancel_study(name: str, studies: Service) -> dict[str, Any]:
    return studies.cancel(name)


@router.post("/studies/{name}/resume", dependencies=[Depends(require_token)],
             summary="Resubmit a failed or cancelled study with --resume (optionally with more trials)")  # fmt: skip
def resume_study(name: str, studies: Service, body: Annotated[ResumeRequest | None, Body()] = None) -> dict[str, Any]:
    return studies.resume(name, body.n_trials if body else None)


@router.get("/studies/{name}/trials", summary="Trials as paginated JSON, or CSV (one row per trial, s_* columns)")
def get_trials(
    name: str,
    studies: Service,
    format: Literal["json", "csv"] = "json",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    if format == "csv":
        return PlainTextResponse(
            studies.trials_csv(name),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}-trials.csv"'},
        )
    return studies.trials(name, offset, limit)


@router.get("/studies/{name}/plots/{kind}", summary="A Plotly figure (JSON) of the study")
def get_plot(name: str, kind: PlotKind, studies: Service) -> Response:
    return Response(studies.figure_json(name, kind.value), media_type="application/json")


@router.get("/compare", summary="Best values of studies that differ only in encoding, with bootstrap CIs")
def compare_studies(
    studies: Service, names: Annotated[list[Name], Query(min_length=1, max_length=12)]
) -> dict[str, Any]:
    return studies.compare(names)


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)
