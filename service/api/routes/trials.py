"""A study's trials (JSON pages or the CSV export) and its plots."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from afpe.service.api.deps import Manager
from afpe.service.api.schemas import ERRORS, PlotlyFigure, TrialsPage
from afpe.service.plots.figures import list_plot_kinds

PlotKind = Enum("PlotKind", {kind: kind for kind in list_plot_kinds()}, type=str)

router = APIRouter(prefix="/studies/{name}", tags=["trials"])


@router.get(
    "/trials",
    summary="Trials as paginated JSON, or CSV (one row per trial, s_* columns; as `afpe export`)",
    response_model=TrialsPage,
    responses={**ERRORS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_trials(
    name: str,
    manager: Manager,
    format: Literal["json", "csv"] = "json",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TrialsPage | Response:
    if format == "csv":
        return PlainTextResponse(
            manager.queries.trials_csv(name),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}-trials.csv"'},
        )
    return manager.queries.trials(name, offset, limit)


@router.get(
    "/plots/{kind}",
    summary="A Plotly figure (JSON) of the study; with its ETag in If-None-Match, 304 while the study is unchanged",
    response_model=PlotlyFigure,
    responses={**ERRORS, 304: {"description": "the figure did not change since the ETag given"}},
)
def get_plot(name: str, kind: PlotKind, manager: Manager, request: Request) -> Response:
    etag = f'"{manager.queries.figure_version(name)}-{kind.value}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(manager.queries.figure_json(name, kind.value), media_type="application/json", headers=headers)
