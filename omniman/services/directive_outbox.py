"""The directive outbox: rows written in the caller's transaction, dispatched after it
commits (by :mod:`omniman.directives.dispatch`; run by :mod:`omniman.directives.runner`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from omniman import conf
from omniman.directives.dispatch import dispatch
from omniman.directives.reaper import dispatch_due
from omniman.models import Directive
from omniman.registry import registry

logger = logging.getLogger(__name__)


def enqueue_many(
    specs: Iterable[tuple[str, dict[str, Any]]],
    *,
    max_attempts: int | None = None,
    delay: float = 0.0,
) -> list[Directive]:
    """Write one directive per (topic, payload) in one INSERT, dispatched after commit.

    Must run inside the transaction of the change that causes them: a rolled-back
    change then leaves no directive (and sends nothing), and a committed one always
    has its rows. ``delay`` seconds postpone the first attempt (the reaper sends it).
    ``max_attempts`` defaults to the topic handler's option, then to
    ``DIRECTIVE_MAX_ATTEMPTS``."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("directives must be enqueued inside the transaction of their change")
    now = timezone.now()
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    default_attempts = conf.get("DIRECTIVE_MAX_ATTEMPTS")

    def attempts(topic: str) -> int:
        if max_attempts is not None:
            return max_attempts
        return registry.options_for(topic).max_attempts or default_attempts

    available_at = now + timedelta(seconds=delay) if delay > 0 else now
    # Sent by id right after the commit, unless delayed (the reaper sends those when due).
    by_id = delay <= 0 and connection.features.can_return_rows_from_bulk_insert
    rows = [
        Directive(topic=topic, payload=payload, max_attempts=attempts(topic), available_at=available_at,
                  dispatched_at=now if by_id else None)
        for topic, payload in specs
    ]
    if not rows:
        return []
    _warn_unhandled({row.topic for row in rows})
    Directive.objects.bulk_create(rows)
    if by_id:
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: dispatch(ids))
    elif delay <= 0:  # pragma: no cover - every supported backend returns ids
        transaction.on_commit(dispatch_due)
    return rows


def _warn_unhandled(topics: set[str]) -> None:
    """Say at once when a topic has no handler here (a typo in a channel's config, a
    handlers module never imported), rather than only when its attempts run out."""
    for topic in sorted(topics):
        if registry.get_handler(topic) is None:
            logger.warning(
                "directive topic %r has no handler registered in this process; it will be retried, then "
                "fail. Topics with a handler: %s",
                topic, ", ".join(registry.topics()) or "none",
            )


def enqueue(
    topic: str, payload: dict[str, Any], *, max_attempts: int | None = None, delay: float = 0.0
) -> Directive:
    """Write one directive in the current transaction; see :func:`enqueue_many`."""
    return enqueue_many([(topic, payload)], max_attempts=max_attempts, delay=delay)[0]
