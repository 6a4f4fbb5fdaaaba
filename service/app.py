"""`create_app(settings)`: the FastAPI app (REST API, dashboard, plotly.js) over one database and one job
backend (by default Ray Jobs: on `settings.ray_address`, or on a private local Ray head started the first
time a job needs it, at start-up when studies are still active, and stopped on shutdown), and the background
reconciler that follows the jobs (`manager.reconciler`), started and stopped with the app. Every error is
JSON `{"error": message}`, never a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import optuna
from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from afpe.search.kept_models import artifact_root
from afpe.search.storage import open_storage
from afpe.service.api.errors import install_error_handlers
from afpe.service.api.guard import RequestGuard
from afpe.service.api.headers import SecurityHeaders
from afpe.service.api.routes import health_router, router
from afpe.service.jobs.backend import JobBackend
from afpe.service.jobs.ray_jobs import RayJobBackend
from afpe.service.manager.campaigns import Campaigns
from afpe.service.manager.cross_study_queries import CrossStudyQueries
from afpe.service.manager.derived_store import DerivedStore
from afpe.service.manager.downloads import StudyDownloads
from afpe.service.manager.importer import StudyImporter
from afpe.service.manager.job_follower import JobFollower
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.plot_queries import PlotQueries
from afpe.service.manager.reconciler import Reconciler
from afpe.service.manager.records import open_records
from afpe.service.manager.spec_admission import SpecAdmission
from afpe.service.manager.status_queries import StatusQueries
from afpe.service.manager.study_jobs import StudyJobs
from afpe.service.manager.study_reads import StudyReads
from afpe.service.manager.trial_queries import TrialQueries
from afpe.service.settings import ServiceSettings
from afpe.service.web import dashboard


def create_app(settings: ServiceSettings | None = None, backend: JobBackend | None = None) -> FastAPI:
    """The app; `settings.api_token` (generated when unset, loopback only) is on `app.state.settings`, the
    job backend (default `RayJobBackend`) on `app.state.backend`, the parts of the study manager the routes take
    (`api.deps`) beside them. Requests with a Host header outside
    `settings.allowed_hosts` get 400; the token and body-size checks run before a body is read
    (`api.guard.RequestGuard`). ValueError for a non-loopback host without a token, or a short token."""
    settings = (settings or ServiceSettings()).resolved()
    backend = backend if backend is not None else RayJobBackend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reconciler = app.state.reconciler  # the one task that writes what the cluster changed
        reconciler.start()
        yield
        reconciler.stop()
        backend.close()

    app = FastAPI(
        title="AFPE Sweep",
        version="0.1.0",
        summary="Start, watch, cancel and resume positional-encoding scale searches; plots and a dashboard.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: /docs is the dashboard's own page
        redoc_url=None,
        # one schema per model: a per-axis option's input form (a scalar, a list or "4,8,8", `afpe.core.PerAxis`)
        # would otherwise split StudySpec into StudySpec-Input and StudySpec-Output
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    app.state.backend = backend
    sessions = open_records(settings.storage)
    storage = optuna.storages.get_storage(open_storage(settings.storage))  # cached: finished trials read once
    follower = JobFollower(StudyJobs(sessions, storage, backend, settings.running_cap()))
    reads = StudyReads(sessions, storage, follower.jobs.leases, secrets=settings.secrets())
    derived = DerivedStore(sessions)  # what reads derive, kept per study version; written by the reconciler
    app.state.reconciler = Reconciler(follower, derived)
    app.state.admission = SpecAdmission(settings)
    app.state.lifecycle = StudyLifecycle(follower, app.state.admission)
    app.state.importer = StudyImporter(sessions, storage)
    app.state.statuses = StatusQueries(reads, derived, follower.is_stale, data_dir=settings.data_dir)
    app.state.trials = TrialQueries(reads)
    app.state.downloads = StudyDownloads(reads, artifact_root(settings.storage, settings.artifact_dir))
    app.state.plots = PlotQueries(reads, derived)
    app.state.cross_studies = CrossStudyQueries(reads)
    app.state.campaigns = Campaigns(app.state.lifecycle, app.state.admission, follower.jobs.leases.engine, storage)
    app.include_router(router)
    app.include_router(health_router)
    app.include_router(dashboard.router)
    install_error_handlers(app, page=dashboard.error_page)
    app.add_middleware(
        RequestGuard,
        token=settings.api_token,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)  # outermost: every answer carries them, the guard's refusals too
    return app
