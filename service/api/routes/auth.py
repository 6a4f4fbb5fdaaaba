"""POST /api/auth/check: whether a token is right, for the dashboard's sign-in (the request guard answers 401
before this route runs when it is not)."""

from __future__ import annotations

from fastapi import APIRouter

from afpe.service.api.schemas import ERRORS, Health

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/check",
    summary="200 when `Authorization: Bearer <token>` carries the service's token, else 401; changes nothing",
    response_model=Health,
    responses=ERRORS,
)
def check_token() -> Health:
    return Health()
