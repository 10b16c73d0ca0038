"""Helpers for the reliability tests: a raw HTTP client for a live server, users with
tokens, and the soak switch (``OMNIMAN_SOAK=1`` runs the long variants)."""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.authtoken.models import Token

from omniman.models import ChannelGrant

SOAK = os.environ.get("OMNIMAN_SOAK") == "1"
#: The ports the reliability tests take their servers' from (first, last; each run of
#: ``dev.py test`` its own share, see ``tests/ports.py``).
PORTS = (8600, 8699)


def soak(default: int, long: int) -> int:
    """``long`` under ``OMNIMAN_SOAK=1``, else ``default``."""
    return long if SOAK else default


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.raw)

    @property
    def etag(self) -> str:
        return self.headers.get("etag", "")


class Http:
    """A small HTTP client over ``http.client``: the body goes out byte for byte, and
    headers are sent exactly as given (no client-side checks or retries)."""

    def __init__(self, base_url: str, token: str = "") -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        timeout: float = 60,
    ) -> Answer:
        import time

        sent = dict(headers or {})
        raw: bytes | None
        if body is None:
            raw = None
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = orjson.dumps(body)
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        token = self.token if token is None else token
        if token:
            sent.setdefault("Authorization", f"Token {token}")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(method, path, body=raw, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            return Answer(
                resp.status,
                {k.lower(): v for k, v in resp.getheaders()},
                data,
                time.monotonic() - started,
            )
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("POST", path, {} if body is None else body, **kw)


def race(n: int, fn: Callable[[int], Any], timeout: float = 120) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released together by a barrier; the results in
    order (an exception is returned in place of its result)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # reported by the caller's assertions
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


def make_user(username: str, *channels: Any, staff: bool = False, superuser: bool = False) -> tuple[Any, str]:
    """A user granted ``channels`` and their API token."""
    user = get_user_model().objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    for channel in channels:
        ChannelGrant.objects.create(user=user, channel=channel)
    return user, Token.objects.create(user=user).key


def problem_of(answer: Answer, status: int, code: str | None = None) -> dict[str, Any]:
    """The problem+json body of ``answer`` after checking its status and code."""
    assert answer.status == status, (answer.status, answer.raw[:500])
    assert answer.headers["content-type"] == "application/problem+json", answer.headers
    body = answer.json()
    assert body["status"] == status and body["title"] and body["type"]
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Any:
    """pytest-django's live server with a listen backlog of 256 instead of Django's 10,
    so that 32 clients connecting at the same instant are queued, not reset."""
    from django.core.servers.basehttp import ThreadedWSGIServer
    from pytest_django.live_server_helper import LiveServer

    class Server(ThreadedWSGIServer):
        request_queue_size = 256

    server = LiveServer("127.0.0.1", start=False)
    server.thread.server_class = Server
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clerk(pos, web) -> tuple[Any, str]:
    return make_user("clerk", pos, web)


@pytest.fixture
def live(live_server: Any, clerk: tuple[Any, str]) -> Http:
    """A client of the live server with the clerk's token (pos and web channels)."""
    return Http(live_server.url, clerk[1])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` are soak-only: they run under ``OMNIMAN_SOAK=1``."""
    if SOAK:
        return
    skip = pytest.mark.skip(reason="soak test: set OMNIMAN_SOAK=1")
    for item in items:
        if "slow" in item.keywords and "tests/reliability/" in item.nodeid:
            item.add_marker(skip)
