"""A study's trials (JSON pages or the CSV export), its kept checkpoints and its plots."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse

from afpe.service.api.deps import Downloads, Plots, Trials
from afpe.service.api.params import StudyName, TrialNumber
from afpe.service.api.schemas import ERRORS, PlotlyFigure, TrialDetail, TrialsPage
from afpe.service.manager.downloads import CheckpointFile
from afpe.service.manager.trial_queries import ROW_COLUMNS, TrialQuery
from afpe.service.plots.kinds import list_plot_kinds

PlotKind = Enum("PlotKind", {kind: kind for kind in list_plot_kinds()}, type=str)
StateName = Literal["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
Sort = Annotated[
    str,
    Query(
        max_length=66,
        description=f"a column: {', '.join(ROW_COLUMNS)}, or a scale s_<axis> (missing values last; ties by number)",
    ),
]
Order = Annotated[Literal["asc", "desc"], Query()]
States = Annotated[list[StateName], Query(max_length=5, description="only trials in these states (all if none)")]

router = APIRouter(prefix="/studies/{name}", tags=["trials"])


@router.get(
    "/trials",
    summary="Trials as paginated JSON, or CSV (one row per trial, s_* columns; as `afpe export`)",
    response_model=TrialsPage,
    responses={**ERRORS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_trials(
    name: StudyName,
    trials: Trials,
    downloads: Downloads,
    format: Literal["json", "csv"] = "json",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: Sort = "number",
    order: Order = "asc",
    state: States = [],  # noqa: B006 - FastAPI copies a list default
) -> TrialsPage | Response:
    if format == "csv":
        return PlainTextResponse(
            downloads.trials_csv(name),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}-trials.csv"'},
        )
    return trials.trials(name, TrialQuery(sort, order, tuple(state), offset, limit))


@router.get(
    "/trials/{number}",
    summary="One whole trial: params, user attrs, learning curve, and for a FAIL its sanitised error and log file",
    response_model=TrialDetail,
    responses=ERRORS,
)
def get_trial(name: StudyName, number: TrialNumber, trials: Trials) -> TrialDetail:
    return trials.trial(name, number)[0]


CHECKPOINT_RESPONSES = {
    **ERRORS,
    200: {
        "description": "the model file: torch.load(weights_only=True); afpe.trainers.model_file.load_model rebuilds it",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


def _file(checkpoint: CheckpointFile) -> FileResponse:
    return FileResponse(checkpoint.path, media_type="application/octet-stream", filename=checkpoint.filename)


@router.get(
    "/best/checkpoint",
    summary="The checkpoint of the study's best configuration (its search trial's best epoch); 404 when none is kept",
    response_class=FileResponse,
    responses=CHECKPOINT_RESPONSES,
)
def get_best_checkpoint(name: StudyName, downloads: Downloads) -> FileResponse:
    return _file(downloads.checkpoint(name))


@router.get(
    "/trials/{number}/checkpoint",
    summary="A trial's kept checkpoint (its best epoch's model file); 404 when it has none",
    response_class=FileResponse,
    responses=CHECKPOINT_RESPONSES,
)
def get_trial_checkpoint(name: StudyName, number: TrialNumber, downloads: Downloads) -> FileResponse:
    return _file(downloads.checkpoint(name, number))


@router.get(
    "/plots/{kind}",
    summary="A Plotly figure (JSON) of the study, of the trials in `state` (all if none); with its ETag in "
    "If-None-Match, 304 while the figure is unchanged",
    response_model=PlotlyFigure,
    responses={**ERRORS, 304: {"description": "the figure did not change since the ETag given"}},
)
def get_plot(
    name: StudyName,
    kind: PlotKind,
    plots: Plots,
    request: Request,
    state: States = [],  # noqa: B006 - FastAPI copies a list default
) -> Response:
    etag, figure = plots.figure(name, kind.value, request.headers.get("if-none-match", ""), state)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if figure is None:
        return Response(status_code=304, headers=headers)
    return Response(figure, media_type="application/json", headers=headers)
