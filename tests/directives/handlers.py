"""Handlers run by the test workers. Each notes every run in Redis (DB 6 by default),
outside the database transaction, so a test sees every run, duplicates included.
Keys start with OMNIMAN_TEST_RUN, so that test runs sharing a Redis do not mix."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

_client: redis.Redis | None = None


def marks() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ.get("OMNIMAN_TEST_MARKS_URL", "redis://127.0.0.1:6379/6"))
    return _client


def key(name: str) -> str:
    return f"omniman-test:{os.environ.get('OMNIMAN_TEST_RUN', 'x')}:{name}"


def _note(directive: Any, ctx: Any) -> None:
    pipe = marks().pipeline(transaction=False)
    pipe.hincrby(key("runs"), str(directive.pk), 1)
    pipe.rpush(key(f"attempts:{directive.pk}"), f"{ctx.attempt} {time.time():.6f} {os.getpid()}")
    pipe.hsetnx(key("first_start"), str(directive.pk), f"{time.time():.6f}")
    pipe.execute()


def count(directive: Any, ctx: Any) -> None:
    """Succeeds; counts runs by directive id."""
    _note(directive, ctx)


def slow_first_time(directive: Any, ctx: Any) -> None:
    """The first attempt says where it runs and then hangs (the test kills it there)."""
    _note(directive, ctx)
    if ctx.attempt == 1:
        marks().set(key(f"pid:{directive.pk}"), os.getpid())
        time.sleep(120)


def always_fails(directive: Any, ctx: Any) -> None:
    _note(directive, ctx)
    raise RuntimeError(f"always fails (attempt {ctx.attempt})")
