"""`create_app(settings)`: the FastAPI app (REST API, dashboard, plotly.js) over one database and one job
backend (by default Ray Jobs: on `settings.ray_address`, or on a private local Ray head started the first
time a job needs it, at start-up when studies are still active, and stopped on shutdown). Every error is
JSON `{"error": message}`, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import optuna
from fastapi import FastAPI

from afpe.search.storage import open_storage
from afpe.service.api.errors import install_error_handlers
from afpe.service.api.routes import health_router, router
from afpe.service.jobs.backend import JobBackend
from afpe.service.jobs.ray_jobs import RayJobBackend
from afpe.service.manager.manager import StudyManager
from afpe.service.manager.records import open_records
from afpe.service.settings import ServiceSettings
from afpe.service.web import dashboard

log = logging.getLogger("afpe.service")


def create_app(settings: ServiceSettings | None = None, backend: JobBackend | None = None) -> FastAPI:
    """The app; `settings.api_token` (generated when unset, loopback only) is on `app.state.settings`, the
    job backend (default `RayJobBackend`) on `app.state.backend`. ValueError for a non-loopback host
    without a token."""
    settings = (settings or ServiceSettings()).resolved()
    backend = backend if backend is not None else RayJobBackend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.manager.lifecycle.reconcile()
        except Exception:  # noqa: BLE001 - a cluster that is down must not keep the service from serving
            log.exception("could not reconcile active studies with the job backend")
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
    app.state.manager = StudyManager.create(settings, open_records(settings.storage), storage, backend)
    app.include_router(router)
    app.include_router(health_router)
    app.include_router(dashboard.router)
    install_error_handlers(app)
    return app
