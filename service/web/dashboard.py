"""Server-rendered dashboard: study list + start form, study page (live status and plots), comparison view,
the API's operations (/docs). plotly.js comes from the installed plotly package (no CDN), the pages' own scripts
from `static/` (no inline script: the Content-Security-Policy allows none); the values a script needs sit in a
`<script type="application/json">` block. A user signs in once per tab (`static/auth.js`): the pages' scripts
send the token as `Authorization: Bearer` with each action (see `afpe.service.api.auth`)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

import jinja2
import plotly
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from afpe.search.spec import SLUG_PATTERN
from afpe.service.api.auth import request_authorized
from afpe.service.api.deps import Admission, CampaignsDep, CrossStudies, Lifecycle, Statuses, Trials
from afpe.service.api.params import Slug, StudyName, TrialNumber
from afpe.service.errors import ApiError, InvalidInput, NotFound, Unauthorized
from afpe.service.manager.trial_queries import ROW_COLUMNS, TrialQuery
from afpe.service.plots.kinds import build_figure, list_plot_kinds, studies_figure
from afpe.service.plots.trend import TrendData

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SCRIPTS = {path.name: path for path in (Path(__file__).parent / "static").glob("*.js")}
# a script's URL carries a hash of its content: a browser may keep it for a year, and a changed script is fetched anew
SCRIPT_URLS = {
    name: f"/static/{name}?v={hashlib.sha256(path.read_bytes()).hexdigest()[:16]}" for name, path in SCRIPTS.items()
}
# autoescape by the environment, not by file extension: Starlette's default escapes only .html/.htm/.xml,
# and the templates are named *.html.jinja
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)
templates.env.globals["script_url"] = SCRIPT_URLS.__getitem__
router = APIRouter(include_in_schema=False)
SLUG = re.compile(SLUG_PATTERN)
MAX_OVERRIDES_CHARS = 10_000


def _check_form_token(request: Request, token: str | None) -> None:
    if not request_authorized(request, token):
        raise Unauthorized("token: wrong or missing API token (printed by `afpe serve`, or AFPE_API_TOKEN)")


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/{name}")
def page_script(name: str) -> FileResponse:
    """One of the pages' scripts (`SCRIPTS`, by file name only: any other name is a 404)."""
    if name not in SCRIPTS:
        raise NotFound(f"/static/{name}: no such file")
    headers = {"Cache-Control": "max-age=31536000, immutable"}
    return FileResponse(SCRIPTS[name], media_type="application/javascript", headers=headers)


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """The operations of the OpenAPI schema as a page served from here (FastAPI's Swagger UI loads its
    scripts from a CDN, and no local copy of them is installed)."""
    return templates.TemplateResponse(request, "docs.html.jinja", {"api": request.app.openapi()})


@router.get("/", response_class=HTMLResponse)
def index(request: Request, statuses: Statuses, admission: Admission, campaigns: CampaignsDep) -> HTMLResponse:
    context = {"studies": statuses.list(), "specs": admission.shipped_specs(), "campaigns": campaigns.names()}
    return templates.TemplateResponse(request, "index.html.jinja", context)


@router.post("/studies")
def start_from_form(
    request: Request,
    lifecycle: Lifecycle,
    admission: Admission,
    spec: Annotated[str, Form()] = "",
    token: Annotated[str | None, Form()] = None,
    overrides: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Start the shipped spec `spec` with the `key=value` lines of `overrides`; the token is checked before any
    other field (`api.guard` bounds the body of a request without the token header)."""
    _check_form_token(request, token)
    if not SLUG.fullmatch(spec):
        raise InvalidInput(f"spec: {spec!r} must match {SLUG_PATTERN}")
    if len(overrides) > MAX_OVERRIDES_CHARS:
        raise InvalidInput(f"overrides: {len(overrides)} characters, at most {MAX_OVERRIDES_CHARS}")
    record, _ = lifecycle.create(admission.with_form_overrides(spec, overrides))
    return RedirectResponse(f"/studies/{record.name}", status_code=303)


@router.get("/studies/{name}", response_class=HTMLResponse)
def study_page(request: Request, name: StudyName, statuses: Statuses) -> HTMLResponse:
    status = statuses.status(name)
    context = {"status": status, "kinds": list_plot_kinds(), "spec_json": json.dumps(status.spec, indent=1)}
    return templates.TemplateResponse(request, "study.html.jinja", context)


@router.get("/studies/{name}/header", response_class=HTMLResponse)
def study_header(request: Request, name: StudyName, statuses: Statuses) -> HTMLResponse:
    """The study page's header alone (state, counts, the answer, warnings, errors, note, actions): the page's
    script fetches it again whenever the status's version, state, note, error or holder changes."""
    headers = {"Cache-Control": "no-store"}
    context = {"status": statuses.status(name)}
    return templates.TemplateResponse(request, "study_header.html.jinja", context, headers=headers)


TABLE_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@router.get("/studies/{name}/trials", response_class=HTMLResponse)
def trials_page(
    request: Request,
    name: StudyName,
    trials: Trials,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: Annotated[str, Query(max_length=66)] = "number",
    order: Literal["asc", "desc"] = "asc",
    state: Annotated[list[Literal[TABLE_STATES]], Query(max_length=5)] = [],  # noqa: B006 - FastAPI copies it
) -> HTMLResponse:
    """The study's trials as a table, one page at a time, by the query of GET /api/studies/{name}/trials
    (`offset` = (page - 1) * per_page)."""
    query = TrialQuery(sort, order, tuple(state), (page - 1) * per_page, per_page)
    total, rows, space = trials.trial_table(name, query)

    def link(**changes) -> str:
        params = {"page": page, "per_page": per_page, "sort": sort, "order": order, "state": list(state)} | changes
        return f"/studies/{name}/trials?{urlencode(params, doseq=True)}"

    columns = [*ROW_COLUMNS[:4], *(axis.param for axis in space.axes), *ROW_COLUMNS[4:]]
    sort_links = {
        column: link(sort=column, order="desc" if column == sort and order == "asc" else "asc", page=1)
        for column in columns
    }
    pages = max(1, math.ceil(total / per_page))
    context = {
        "name": name,
        "rows": rows,
        "total": total,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "sort": sort,
        "order": order,
        "states": TABLE_STATES,
        "chosen": set(state),
        "axes": [axis.param for axis in space.axes],
        "ratio": "/".join(space.ratio) if space.ratio else None,
        "sort_links": sort_links,
        "previous": link(page=page - 1) if page > 1 else None,
        "next": link(page=page + 1) if page < pages else None,
    }
    return templates.TemplateResponse(request, "trials.html.jinja", context)


@router.get("/studies/{name}/trials/{number}", response_class=HTMLResponse)
def trial_page(request: Request, name: StudyName, number: TrialNumber, trials: Trials) -> HTMLResponse:
    """One trial: params, user attrs, learning curve, and for a FAIL its sanitised error and log file."""
    trial, frozen, space = trials.trial(name, number)
    curve = build_figure("intermediate", [frozen], space) if frozen.intermediate_values else None
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("error", "log")}
    context = {
        "name": name,
        "trial": trial,
        "attrs": attrs,
        "metric": space.metric,
        # "</" escaped: the JSON sits inside a <script> element
        "figure": curve.to_json().replace("</", "<\\/") if curve is not None else None,
    }
    return templates.TemplateResponse(request, "trial.html.jinja", context)


ERROR_TITLES = {404: "Not found", 409: "Cannot be shown", 422: "Not a valid request"}
NAMES_HINT = "Tick studies in the list of all studies, then press Compare or Trend."


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page for a browser (`api.errors.wants_page`): the status, the message, links back."""
    title = ERROR_TITLES.get(status, "Error")
    hint = NAMES_HINT if message.startswith("names") else "The list of all studies has every study of this service."
    context = {"title": title, "message": message, "hint": hint}
    return templates.TemplateResponse(request, "error.html.jinja", context, status_code=status)


def _named(names: list[str], least: int, view: str) -> list[str]:
    """The `names` of a view across studies; InvalidInput (a page for a browser) when fewer than `least`."""
    if len(names) < least:
        raise InvalidInput(f"names: {view} needs at least {least} study name(s), as ?names=a&names=b")
    return names


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    studies: CrossStudies,
    names: Annotated[list[Slug], Query(max_length=12)] = [],  # noqa: B006 - FastAPI copies it
) -> HTMLResponse:
    names = _named(names, 1, "a comparison")
    result = studies.compare(names).model_dump(mode="json")
    # "</" escaped: the JSON sits inside a <script> element
    figure = studies_figure("compare", result).to_json().replace("</", "<\\/")
    context = {"result": result, "figure": figure, "names": names}
    return templates.TemplateResponse(request, "compare.html.jinja", context)


@router.get("/trend", response_class=HTMLResponse)
def trend_page(
    request: Request,
    studies: CrossStudies,
    names: Annotated[list[Slug], Query(max_length=24)] = [],  # noqa: B006 - FastAPI copies it
) -> HTMLResponse:
    result = studies.trend(_named(names, 2, "a trend"))
    figure = studies_figure("trend", TrendData(**dict(result)))
    # "</" escaped: the JSON sits inside a <script> element
    context = {"result": result, "figure": figure.to_json().replace("</", "<\\/"), "names": names}
    return templates.TemplateResponse(request, "trend.html.jinja", context)


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_page(request: Request, name: StudyName, campaigns: CampaignsDep, studies: CrossStudies) -> HTMLResponse:
    """The campaign's table, its comparisons and the trend of its studies' answers (once two have one)."""
    table = campaigns.table(name)
    answered = [row["study"] for row in table["studies"] if row["mean"] is not None]
    figure, no_trend = None, "fewer than two studies have an answer"
    if len(answered) >= 2:
        try:
            figure = studies_figure("trend", TrendData(**dict(studies.trend(answered)))).to_json().replace("</", "<\\/")
        except ApiError as error:  # the answered studies do not differ in one option
            no_trend = str(error)
    done = sum(row["state"] == "succeeded" for row in table["studies"])
    context = {"table": table, "figure": figure, "no_trend": no_trend, "done": done}
    return templates.TemplateResponse(request, "campaign.html.jinja", context)
