"""Server-rendered dashboard: study list + start form, study page (live status and plots), comparison view.
plotly.js comes from the installed plotly package (no CDN). Forms carry the API token as a field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import plotly
import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from afpe.search.spec import SLUG_PATTERN
from afpe.service.api import Service
from afpe.service.auth import token_matches
from afpe.service.errors import Unauthorized
from afpe.service.plot_figures import PLOT_KINDS
from afpe.service.studies import apply_form_overrides

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def _check_form_token(request: Request, token: str) -> None:
    if not token_matches(request, token):
        raise Unauthorized("token: wrong or missing API token (printed by `afpe serve`, or AFPE_API_TOKEN)")


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/", response_class=HTMLResponse)
def index(request: Request, studies: Service) -> HTMLResponse:
    context = {"studies": studies.list(), "specs": studies.shipped_specs()}
    return templates.TemplateResponse(request, "index.html.jinja", context)


@router.post("/studies")
def start_from_form(
    request: Request,
    studies: Service,
    spec: Annotated[str, Form(pattern=SLUG_PATTERN)],
    token: Annotated[str, Form()],
    overrides: Annotated[str, Form(max_length=10_000)] = "",
) -> RedirectResponse:
    _check_form_token(request, token)
    status, _ = studies.create(apply_form_overrides(studies.shipped_spec(spec), overrides))
    return RedirectResponse(f"/studies/{status['name']}", status_code=303)


@router.get("/studies/{name}", response_class=HTMLResponse)
def study_page(request: Request, name: str, studies: Service) -> HTMLResponse:
    status = studies.status(name)
    context = {"status": status, "kinds": list(PLOT_KINDS), "spec_json": json.dumps(status["spec"], indent=1)}
    return templates.TemplateResponse(request, "study.html.jinja", context)


@router.post("/studies/{name}/cancel")
def cancel_from_form(request: Request, name: str, studies: Service, token: Annotated[str, Form()]) -> RedirectResponse:
    _check_form_token(request, token)
    studies.cancel(name)
    return RedirectResponse(f"/studies/{name}", status_code=303)


@router.post("/studies/{name}/resume")
def resume_from_form(request: Request, name: str, studies: Service, token: Annotated[str, Form()]) -> RedirectResponse:
    _check_form_token(request, token)
    studies.resume(name)
    return RedirectResponse(f"/studies/{name}", status_code=303)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, studies: Service, names: Annotated[list[str], Query(min_length=1, max_length=12)]
) -> HTMLResponse:
    result = studies.compare(names)
    # "</" escaped: the JSON sits inside a <script> element
    context = {"result": result, "figure": compare_figure(result).to_json().replace("</", "<\\/")}
    return templates.TemplateResponse(request, "compare.html.jinja", context)


def compare_figure(result: dict) -> go.Figure:
    """Best value per study with its bootstrap CI as error bars (none with a single repeat)."""
    rows = [r for r in result["studies"] if r["best"] is not None]
    means = [r["best"]["mean"] for r in rows]
    plus = [(r["best"]["high"] - r["best"]["mean"]) if r["best"]["high"] is not None else 0 for r in rows]
    minus = [(r["best"]["mean"] - r["best"]["low"]) if r["best"]["low"] is not None else 0 for r in rows]
    fig = go.Figure(
        go.Bar(
            x=[f"{r['name']} ({r['encoding']})" for r in rows],
            y=means,
            error_y={"type": "data", "array": plus, "arrayminus": minus, "symmetric": False},
        )
    )
    metric = rows[0]["metric"] if rows else "value"
    fig.update_layout(title=f"best {metric} per study ({result['confidence']:.0%} bootstrap CI)", yaxis_title=metric)
    return fig
