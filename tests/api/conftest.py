from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from omniman.models import ChannelGrant


class Client(APIClient):
    """An API client that sends raw JSON bytes, so tests control the exact body."""

    def post_json(self, path: str, body: Any = None, **extra: Any) -> Any:
        raw = body if isinstance(body, (bytes, str)) else orjson.dumps(body if body is not None else {})
        return self.post(path, raw, content_type="application/json", **extra)


def make_user(username: str, *channels: Any, staff: bool = False, superuser: bool = False) -> Any:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    for channel in channels:
        ChannelGrant.objects.create(user=user, channel=channel)
    return user


def client_for(user: Any) -> Client:
    client = Client()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def user(pos, web):
    return make_user("clerk", pos, web)


@pytest.fixture
def api(user):
    return client_for(user)


@pytest.fixture
def operator(pos, web):
    return client_for(make_user("op", pos, web, staff=True))


@pytest.fixture
def anon():
    return Client()


def open_session(api: Client, channel: str = "pos", key: str = "SESS-001", **body: Any) -> Any:
    response = api.post_json("/api/sessions/", {"channel_code": channel, "session_key": key, **body})
    assert response.status_code == 201, response.content
    return response


def add_coffee(api: Client, key: str = "SESS-001", channel: str = "pos", **extra: Any) -> Any:
    response = api.post_json(
        f"/api/sessions/{key}/modify/",
        {"channel_code": channel, "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]},
        **extra,
    )
    assert response.status_code == 200, response.content
    return response


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and code."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/problem+json"
    body = orjson.loads(response.content)
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


def data(response: Any) -> Any:
    return orjson.loads(response.content)
