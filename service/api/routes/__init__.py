"""One router per resource; `router` holds them all under /api, `health` serves /healthz."""

from fastapi import APIRouter

from afpe.service.api.routes import auth, campaign_specs, campaigns, compare, health, specs, studies, trials

router = APIRouter(prefix="/api")
for module in (specs, studies, trials, compare, campaigns, campaign_specs, auth):
    router.include_router(module.router)
health_router = health.router

__all__ = ["health_router", "router"]
