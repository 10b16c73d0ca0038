from __future__ import annotations

import os

import pytest

from omniman import directives
from omniman.registry import registry


@pytest.fixture
def handlers():
    """Register handlers for one test: ``handlers("topic", fn)``; removed afterwards."""
    added: list[str] = []

    def register(topic, fn):
        registry.register_handler(topic, fn)
        added.append(topic)
        return fn

    yield register
    for topic in added:
        registry.handlers.pop(topic, None)


@pytest.fixture(autouse=True)
def _reset_dispatch_pause():
    directives._paused_until = 0.0
    yield
    directives._paused_until = 0.0


@pytest.fixture
def fast_backoff(settings):
    settings.OMNIMAN = {
        **settings.OMNIMAN,
        "DIRECTIVE_BACKOFF_BASE_SECONDS": 0.02,
        "DIRECTIVE_BACKOFF_MAX_SECONDS": 0.2,
        "DIRECTIVE_MAX_ATTEMPTS": 4,
    }
    return settings.OMNIMAN


@pytest.fixture(scope="module")
def marks():
    """Redis (DB 6 unless OMNIMAN_TEST_MARKS_URL) where the test workers' handlers note runs."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(os.environ.get("OMNIMAN_TEST_MARKS_URL", "redis://127.0.0.1:6379/6"))
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not reachable for the celery tests")
    return client
