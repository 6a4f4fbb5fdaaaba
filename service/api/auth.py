"""The dashboard's token checks (constant-time compare against the configured/generated token): its pages
send the token a user signed in with as `Authorization: Bearer` (kept in the tab's sessionStorage, never in a
URL or cookie); a form posted by a script may carry it as a `token` field instead. A cross-site page can send
neither: it does not know the token, and a header on a cross-origin request needs a CORS preflight this
service never grants. REST requests are checked by `afpe.service.api.guard` before their body is read."""

from __future__ import annotations

import secrets

from fastapi import Request


def token_matches(request: Request, given: str | None) -> bool:
    expected = request.app.state.settings.api_token
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


def request_authorized(request: Request, form_token: str | None) -> bool:
    """The request's bearer token, else its form field `token`, is the service's token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    header = given.strip() if scheme.lower() == "bearer" else None
    return token_matches(request, header) or token_matches(request, form_token)
