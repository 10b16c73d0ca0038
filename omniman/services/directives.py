"""Directives: rows written in the caller's transaction, dispatched after it commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from omniman import conf
from omniman.models import Directive

logger = logging.getLogger(__name__)


def enqueue_many(specs: Iterable[tuple[str, dict[str, Any]]]) -> list[Directive]:
    """Write one directive per (topic, payload) in one INSERT, dispatched after commit.

    Must run inside the transaction of the change that causes them: a rolled-back
    change then leaves no directive, and a committed one always has its rows."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("directives must be enqueued inside the transaction of their change")
    now = timezone.now()
    max_attempts = conf.get("DIRECTIVE_MAX_ATTEMPTS")
    rows = [
        Directive(topic=topic, payload=payload, max_attempts=max_attempts, available_at=now)
        for topic, payload in specs
    ]
    if not rows:
        return []
    Directive.objects.bulk_create(rows)
    if connection.features.can_return_rows_from_bulk_insert:
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: dispatch(ids))
    else:  # pragma: no cover - every supported backend returns ids
        transaction.on_commit(lambda: dispatch_due())
    return rows


def enqueue(topic: str, payload: dict[str, Any]) -> Directive:
    return enqueue_many([(topic, payload)])[0]


def dispatch(ids: Sequence[int]) -> None:
    """Hand directive ids to the configured backend. Never raises: a lost dispatch is
    recovered by the reaper (``omniman_dispatch_directives`` / the beat task)."""
    from omniman.directives import send

    try:
        send(ids)
    except Exception:
        logger.exception("Dispatch of directives %s failed; the reaper will retry them", list(ids))


def dispatch_due() -> None:
    from omniman.directives import reap

    reap()
