"""Error handlers: every error is JSON `{"error": message}`, never a traceback; a write that lost a race to
another process (an IntegrityError of the database) is a 409. A browser asking a page (a GET outside /api/ and
/static/ that accepts text/html) gets the same status and message as a page instead (`page`: the dashboard's)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from afpe.search.outage import is_transient
from afpe.service.errors import ApiError

log = logging.getLogger("afpe.service")


ErrorPage = Callable[[Request, int, str], HTMLResponse]


def wants_page(request: Request) -> bool:
    """A browser asking for a page: a GET outside /api/ and /static/ whose Accept names text/html."""
    path = request.url.path
    return (
        request.method == "GET"
        and not path.startswith(("/api/", "/static/"))
        and "text/html" in request.headers.get("accept", "")
    )


def install_error_handlers(app: FastAPI, page: ErrorPage | None = None) -> None:
    """JSON error bodies; with `page`, pages for the requests `wants_page` names."""

    def answer(request: Request, body: dict, status: int, headers: dict | None = None) -> Response:
        if page is not None and wants_page(request):
            return page(request, status, body["error"])
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return answer(request, {"error": error.message}, error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [_problem(item) for item in error.errors()]
        return answer(request, {"error": "; ".join(problems), "detail": jsonable(error.errors())}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return answer(request, {"error": str(error.detail)}, error.status_code, error.headers)

    @app.exception_handler(IntegrityError)
    async def concurrent_write(request: Request, error: IntegrityError) -> JSONResponse:
        # two processes storing the same study name at once: the database refused the second
        log.info("integrity error on %s %s: %s", request.method, request.url.path, error.orig)
        return JSONResponse({"error": "name: the study was created by another request at the same time"}, 409)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_transient(error):  # a database restart: the next request finds it back (pool_pre_ping)
            log.warning("storage unreachable on %s %s: %s", request.method, request.url.path, error)
            message = "the database is unreachable (restarting?); try again shortly"
            return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "5"})
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the server log"}, status_code=500)


def _problem(item: dict) -> str:
    """'trainer.epochs: Input should be ...' (a body's fields named as in the spec, without 'body.')."""
    loc = [str(part) for part in item["loc"]]
    path = ".".join(loc[1:] if loc[:1] == ["body"] else loc)
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def jsonable(errors: list[dict]) -> list[dict]:
    """Pydantic error dicts without their non-JSON parts (ctx may hold exception objects)."""
    return [{key: item[key] for key in ("loc", "msg", "type") if key in item} for item in errors]
