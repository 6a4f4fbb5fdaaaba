"""Every answer of the real app carries the security headers: pages, JSON, files, and the guard's refusals; its
policy lets no inline script run."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from afpe.service.api.headers import CONTENT_SECURITY_POLICY
from afpe.service.app import create_app


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/docs", 200),
        ("GET", "/static/plotly.min.js", 200),
        ("GET", "/static/auth.js", 200),
        ("GET", "/api/studies", 200),
        ("GET", "/api/studies/nope", 404),
        ("POST", "/api/studies", 401),  # refused by the guard before any route runs
    ],
)
def test_each_answer_carries_the_security_headers(make_settings, method, path, status):
    with TestClient(create_app(make_settings())) as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "object-src 'none'" in CONTENT_SECURITY_POLICY
    directives = dict(directive.split(" ", 1) for directive in response.headers["content-security-policy"].split("; "))
    assert directives["script-src"] == "'self'", "no inline script or handler, no eval"
    assert directives["style-src"] == "'self' 'unsafe-inline'", "plotly.js sets inline styles"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
