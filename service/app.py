"""`create_app(settings)`: the FastAPI app (REST API, dashboard, plotly.js) over one database and one Ray cluster.

With no `ray_address` a private local Ray head is started the first time a job needs it (at start-up when
studies are still active) and stopped on shutdown. Every error is JSON `{"error": message}`, never a traceback.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import optuna
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from afpe.search.storage import open_storage, public_url, split_password
from afpe.service import api, dashboard
from afpe.service.errors import ApiError
from afpe.service.jobs import JobRunner, LocalRayHead
from afpe.service.records import open_records
from afpe.service.settings import ServiceSettings
from afpe.service.studies import StudyService

log = logging.getLogger("afpe.service")


class RayBackend:
    """The job runner, created on first use: on `ray_address` (Ray auth token from $RAY_AUTH_TOKEN), or on a
    private local head started here."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.head: LocalRayHead | None = None
        self._runner: JobRunner | None = None
        self._lock = threading.Lock()

    def runner(self) -> JobRunner:
        with self._lock:
            if self._runner is None:
                url, password = split_password(self.settings.storage)
                address, token = self.settings.ray_address, os.environ.get("RAY_AUTH_TOKEN")
                if address is None:
                    head_env = {"PGPASSWORD": password} if password else {}
                    self.head = LocalRayHead(self.settings.ray_num_cpus, env=head_env)
                    address, token = self.head.address, self.head.token
                    log.info("started a private Ray head at %s (temp dir %s)", address, self.head.temp_dir)
                env = {"AFPE_STORAGE": public_url(url), "AFPE_DATA_DIR": str(self.settings.data_dir)}
                self._runner = JobRunner(address, self.settings.work_dir, env, token)
            return self._runner

    def close(self) -> None:
        if self.head is not None:
            self.head.stop()
            self.head = None
            self._runner = None


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The app; `settings.api_token` (generated when unset, loopback only) is on `app.state.settings`."""
    settings = (settings or ServiceSettings()).resolved()
    backend = RayBackend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        studies: StudyService = app.state.studies
        try:
            studies.reconcile()
        except Exception:  # noqa: BLE001 - a cluster that is down must not keep the service from serving
            log.exception("could not reconcile active studies with the Ray cluster")
        yield
        backend.close()

    app = FastAPI(
        title="AFPE Sweep",
        version="0.1.0",
        summary="Start, watch, cancel and resume positional-encoding scale searches; plots and a dashboard.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backend = backend
    storage = optuna.storages.get_storage(open_storage(settings.storage))  # cached: finished trials read once
    app.state.studies = StudyService(settings, open_records(settings.storage), storage, backend.runner)
    app.include_router(api.router)
    app.include_router(dashboard.router)
    _install_error_handlers(app)

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()]
        return JSONResponse({"error": "; ".join(problems), "detail": jsonable(error.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the server log"}, status_code=500)


def jsonable(errors: list[dict]) -> list[dict]:
    """Pydantic error dicts without their non-JSON parts (ctx may hold exception objects)."""
    return [{key: item[key] for key in ("loc", "msg", "type") if key in item} for item in errors]
