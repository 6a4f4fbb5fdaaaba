"""Security headers on every response (plain ASGI middleware: it adds headers at `http.response.start` and never
buffers a body, so streamed files and plots pass through unchanged).

- `Content-Security-Policy`: scripts, styles, fetches and images from this origin only (the dashboard serves its
  own plotly.js and page scripts). No inline script runs (no `'unsafe-inline'` in `script-src`: the pages pass
  values to their scripts in `<script type="application/json">` blocks, and bind events with
  `addEventListener`), so markup that slipped past escaping could not run a script either; inline styles stay
  allowed (plotly.js sets them). No plugins, no `<base>`, no framing by another site (clickjacking), forms post
  only here. `'unsafe-eval'` is not granted: the plot kinds the dashboard draws (scatter, bar, heatmap,
  contour) do not need it.
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP response of `app` (a header the app set itself is left as it is)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
