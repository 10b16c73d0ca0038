"""The no-op work both sides of the directives scenario do: note the start time in Redis."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import shared_task

_client: redis.Redis | None = None


def marks() -> redis.Redis:
    """Redis DB 11 (the bench's own): a counter of finished jobs and their start times."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ.get("BENCH_MARKS_URL", "redis://127.0.0.1:6379/11"))
    return _client


def _mark(run: str, key: str) -> None:
    pipe = marks().pipeline(transaction=False)
    pipe.hset(f"bench:start:{run}", key, repr(time.time()))
    pipe.incr(f"bench:done:{run}")
    pipe.execute()


def noop_handler(directive: Any, ctx: Any) -> None:
    """A directive handler that does nothing but say it started."""
    payload = directive.payload
    _mark(str(payload.get("run") or "commit"), str(payload.get("session_key") or directive.pk))


@shared_task(name="bench.raw_noop", ignore_result=True, acks_late=True)
def raw_noop(run: str, key: str) -> None:
    """The baseline: a bare Celery task doing the same."""
    _mark(run, key)
