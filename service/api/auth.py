"""The dashboard forms' token check (constant-time compare against the configured/generated token); REST
requests are checked by `afpe.service.api.guard` before their body is read."""

from __future__ import annotations

import secrets

from fastapi import Request


def token_matches(request: Request, given: str | None) -> bool:
    expected = request.app.state.settings.api_token
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())
