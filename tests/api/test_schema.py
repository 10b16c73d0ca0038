"""The OpenAPI document matches behaviour: schemathesis fuzzes every operation through
the WSGI app and checks for 5xx, undocumented statuses, content types, headers and
response bodies that break the schema."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op

from .conftest import data, make_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("OMNIMAN_SCHEMATHESIS_EXAMPLES", "12"))

@pytest.fixture
def keep_connection():
    """The WSGI handler closes the connection after each request; the test's
    transaction needs it open (Django's test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(pos, web, keep_connection):
    from rest_framework.authtoken.models import Token

    user = make_user("fuzzer", pos, web, staff=True)
    for key in ("SESS-001", "SESS-002"):
        create_session(channel="pos", session_key=key)
        modify_session(channel="pos", session_key=key, ops=[add_line_op()])
    commit_session(channel="pos", session_key="SESS-002")
    return Token.objects.create(user=user).key


def test_schema_is_served_without_auth(anon, db):
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    doc = data(response)
    assert doc["openapi"].startswith("3.")
    assert "/api/sessions/{session_key}/modify/" in doc["paths"]
    assert "/api/orders/stream/" in doc["paths"]


def test_api_matches_its_schema(token):
    """Every operation, EXAMPLES generated requests each, authenticated as an operator."""
    api_schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 16
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

        fuzz()
