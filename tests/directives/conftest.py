from __future__ import annotations

import os
import uuid

import pytest

from omniman.directives import dispatch
from omniman.registry import registry
from tests.require import need, need_module


@pytest.fixture
def handlers():
    """Register handlers for one test: ``handlers("topic", fn)``; removed afterwards."""
    added: list[str] = []

    def register(topic, fn, **options):
        registry.register_handler(topic, fn, **options)
        added.append(topic)
        return fn

    yield register
    for topic in added:
        registry.handlers.pop(topic, None)
        registry.handler_options.pop(topic, None)


@pytest.fixture(autouse=True)
def _reset_dispatch_pause():
    dispatch._paused_until = 0.0
    yield
    dispatch._paused_until = 0.0


@pytest.fixture
def fast_backoff(settings):
    settings.OMNIMAN = {
        **settings.OMNIMAN,
        "DIRECTIVE_BACKOFF_BASE_SECONDS": 0.02,
        "DIRECTIVE_BACKOFF_MAX_SECONDS": 0.2,
        "DIRECTIVE_MAX_ATTEMPTS": 4,
    }
    return settings.OMNIMAN


class Marks:
    """What the test workers' handlers noted in Redis, under keys of this run only
    (test runs on one machine may share the Redis database)."""

    def __init__(self, client, run: str) -> None:
        self.client, self.run = client, run

    @property
    def queue(self) -> str:
        """The Celery queue of this run's workers."""
        return f"omniman-test-{self.run}"

    def key(self, name: str) -> str:
        return f"omniman-test:{self.run}:{name}"

    def clear(self) -> None:
        for k in self.client.scan_iter(match=self.key("*"), count=1000):
            self.client.delete(k)

    def runs(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.client.hgetall(self.key("runs")).items()}

    def first_starts(self) -> dict[int, float]:
        return {int(k): float(v) for k, v in self.client.hgetall(self.key("first_start")).items()}

    def attempts(self, pk: int) -> list[list[str]]:
        """``[attempt, start time, pid]`` of every run of directive ``pk``."""
        return [line.decode().split() for line in self.client.lrange(self.key(f"attempts:{pk}"), 0, -1)]

    def pid(self, pk: int) -> bytes | None:
        return self.client.get(self.key(f"pid:{pk}"))

    def worker_env(self) -> dict[str, str]:
        return {"OMNIMAN_TEST_RUN": self.run, "OMNIMAN_TEST_QUEUE": self.queue}


@pytest.fixture(scope="module")
def marks():
    """Redis (DB 6 unless OMNIMAN_TEST_MARKS_URL) where the test workers' handlers note runs."""
    redis = need_module("redis")
    url = os.environ.get("OMNIMAN_TEST_MARKS_URL", "redis://127.0.0.1:6379/6")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        need(False, f"Redis is not reachable at {url} for the celery tests")
    found = Marks(client, uuid.uuid4().hex[:12])
    yield found
    found.clear()
