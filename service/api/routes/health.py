"""GET /healthz."""

from fastapi import APIRouter

from afpe.service.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", response_model=Health)
def healthz() -> Health:
    return Health()
