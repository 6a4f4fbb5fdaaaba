"""Property-based requests from the OpenAPI schema (schemathesis): no operation answers with a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from afpe.service.app import create_app


@pytest.fixture
def api_schema(make_settings):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(make_settings()))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, auth):
    response = case.call(headers=auth)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    assert response.headers["content-type"][0].startswith(("application/json", "text/csv", "text/html")), response.text
