from __future__ import annotations

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
