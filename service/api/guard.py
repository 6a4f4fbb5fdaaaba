"""`RequestGuard`: the checks that run before a request body is read (FastAPI parses a body before any
dependency runs, so a token check in a dependency comes after the upload is spooled):

- a mutating request (POST, PUT, PATCH, DELETE) under /api/ without `Authorization: Bearer <token>` is
  answered 401 at once (constant-time compare);
- a mutating request elsewhere (the dashboard's forms) without that header may carry its token as a form
  field, which its route checks before any other field: its body is limited to FORM_TOKEN_BODY_BYTES, so an
  unauthenticated upload is refused (413) before it is read, or after that many bytes when it declares no length;
- a body larger than its limit is answered 413: at once when its Content-Length says so, else as soon as the
  bytes received pass the limit (the app's own answer is then replaced). Multipart bodies (the CSV import)
  have `max_upload_bytes`, every other body `max_body_bytes`.

Written as plain ASGI middleware by hand: Starlette offers no body-size limit, and a limit must count the
bytes as they arrive.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TOKEN_BODY_BYTES = 64 * 2**10  # a dashboard form: a spec name, 10,000 characters of overrides, the token


class BodyTooLarge(Exception):
    """The request body passed its limit while it was read."""


class RequestGuard:
    def __init__(self, app: ASGIApp, token: str, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.token = token.encode()
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/")
        limit = self.max_upload_bytes if multipart else self.max_body_bytes
        if scope["method"] in MUTATING and not self._authorized(headers):
            if scope["path"].startswith("/api/"):
                await _error(401, "authorization: send 'Authorization: Bearer <AFPE_API_TOKEN>'", scope, receive, send)
                return
            limit = min(limit, FORM_TOKEN_BODY_BYTES)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _error(413, _too_large(limit), scope, receive, send)
            return
        await self._limited(limit, scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), self.token)

    async def _limited(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a body counted as it arrives; past `limit` the app's answer becomes a 413."""
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await JSONResponse({"error": _too_large(limit)}, status_code=413)(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"body: larger than this service's limit of {limit} bytes"


async def _error(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)
