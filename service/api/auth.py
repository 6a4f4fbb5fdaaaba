"""Bearer-token check of mutating requests (constant-time compare against the configured/generated token)."""

from __future__ import annotations

import secrets

from fastapi import Request

from afpe.service.errors import Unauthorized


def token_matches(request: Request, given: str | None) -> bool:
    expected = request.app.state.settings.api_token
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


def require_token(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(request, token.strip()):
        raise Unauthorized("authorization: send 'Authorization: Bearer <AFPE_API_TOKEN>'")
