"""Claim one directive, run its handler, record the outcome (see :mod:`omniman.directives`)."""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from omniman import conf, signals
from omniman.directives import sql
from omniman.exceptions import PermanentFailure, RetryLater
from omniman.models import Directive
from omniman.registry import HandlerContext, registry

# The package logger, as before the runner was split in modules: hosts configure it by name.
logger = logging.getLogger("omniman.directives")

Status = Directive.Status
MAX_ERROR_CHARS = 4000

F_ = TypeVar("F_", bound=Callable[..., Any])


def non_atomic(handler: F_) -> F_:
    """Run ``handler`` outside a transaction (its writes commit as it makes them).

    For handlers that wait on slow outside services and must not hold a database
    transaction meanwhile; they give up the all-or-nothing of writes and outcome."""
    handler.omniman_atomic = False  # type: ignore[attr-defined]  # a marker read by run_directive
    return handler


# -- claim and run ----------------------------------------------------------


def claim(pk: int, *, due_by: datetime | None = None) -> Directive | None:
    """queued and due → running, attempts + 1, with a lease; None if another worker has it.

    Due means ``available_at`` is not after this process's clock, or not after
    ``due_by``: the clock of the process that sent the directive when it found it due
    (the committing request, the reaper). Without it, a worker whose clock lags
    behind the sender's by more than the broker's delivery time would refuse every
    fresh directive, and each would wait for the reaper's next re-send. A message
    sent before a retry pushed ``available_at`` forward still finds the row not due."""
    now = timezone.now()
    lease = now + timedelta(seconds=conf.get("DIRECTIVE_LEASE_SECONDS"))
    due = max(now, due_by) if due_by is not None else now
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        # Inside a caller's transaction the setting would last until that one commits.
        async_commit = conf.get("DIRECTIVE_ASYNC_COMMIT") and not conn.in_atomic_block
        return sql.claim_returning(conn, pk, now=now, lease=lease, due=due, async_commit=async_commit)
    claimed = Directive.objects.filter(pk=pk, status=Status.QUEUED, available_at__lte=due).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, lease_until=lease, updated_at=now
    )
    if not claimed:
        return None
    directive = Directive.objects.filter(pk=pk).first()
    if directive is None or directive.status != Status.RUNNING or directive.lease_until != lease:
        return None  # reaped and claimed again between the two statements
    return directive


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based): ``base × 2^(attempt-1)``,
    capped at ``DIRECTIVE_BACKOFF_MAX_SECONDS``, times a jitter drawn from [0.5, 1].

    The jitter keeps workers from retrying in lockstep while each interval stays at
    least as long as the longest previous one."""
    base = conf.get("DIRECTIVE_BACKOFF_BASE_SECONDS")
    cap = conf.get("DIRECTIVE_BACKOFF_MAX_SECONDS")
    return float(min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0))


class _LeaseLost(Exception):
    pass


def run_directive(pk: int, *, due_by: datetime | None = None) -> str | None:
    """Claim and run one directive; returns its new status, or None when it was not
    claimed (another worker has it, it is not due, or it is finished). ``due_by``:
    see :func:`claim`."""
    directive = claim(pk, due_by=due_by)
    if directive is None:
        logger.debug("directive %s not claimed (not queued and due)", pk)
        return None
    log = logging.LoggerAdapter(logger, {"directive_id": directive.pk, "topic": directive.topic})
    ctx = HandlerContext(
        directive_id=directive.pk,
        attempt=directive.attempts,
        max_attempts=directive.max_attempts,
        topic=directive.topic,
        logger=log,
    )
    handler = registry.get_handler(directive.topic)
    if handler is None:
        # Retried: during a rolling deploy an old worker may not know a new topic yet.
        # Logged at WARNING by _retry (ERROR on the last attempt), with the known topics.
        known = ", ".join(registry.topics()) or "none"
        return _retry(directive, f"No handler registered for topic {directive.topic!r} "
                                 f"(topics with a handler: {known})")
    lease_seconds = registry.options_for(directive.topic).lease_seconds
    if lease_seconds is not None and not _set_lease(directive, lease_seconds):
        log.warning("directive %s (%s) was taken from this worker before it started", directive.pk, directive.topic)
        return None
    try:
        recorded = False
        if getattr(handler, "omniman_atomic", True):
            with transaction.atomic():
                handler(directive, ctx)
                if not _nothing_written_yet():
                    if not _record(directive, Status.DONE, ""):
                        raise _LeaseLost
                    recorded = True
        else:
            handler(directive, ctx)
        if not recorded and not _record(directive, Status.DONE, "", bookkeeping_only=True):
            raise _LeaseLost
    except _LeaseLost:
        log.warning(
            "directive %s (%s) lost its lease during attempt %s; its outcome was not recorded",
            directive.pk, directive.topic, directive.attempts,
        )
        return None
    except PermanentFailure as exc:
        return _fail(directive, exc.reason)
    except RetryLater as exc:
        # Asked for by the handler (a busy service): expected, so INFO, with its reason.
        return _retry(directive, exc.reason, exc.delay, level=logging.INFO)
    except Exception as exc:
        return _retry(directive, "".join(traceback.format_exception_only(exc)).strip(), exc_info=True)
    log.debug("directive %s (%s) done on attempt %s", directive.pk, directive.topic, directive.attempts)
    return Status.DONE


def _nothing_written_yet() -> bool:
    """True when the handler sent no statement in its transaction (PostgreSQL starts
    one lazily): its outcome then needs no transaction, which saves two round trips
    for handlers that only talk to outside services."""
    conn = connections[DEFAULT_DB_ALIAS]
    return conn.vendor == "postgresql" and sql.transaction_idle(conn)


def _owned(directive: Directive) -> Q:
    """The row as this claim left it: no one else reaped or claimed it since."""
    return Q(
        pk=directive.pk,
        status=Status.RUNNING,
        attempts=directive.attempts,
        lease_until=directive.lease_until,
    )


def _set_lease(directive: Directive, seconds: float) -> bool:
    """Replace the claim's lease by the topic's own (one more statement, only for
    topics that have one), before the handler runs and outside its transaction, so
    the reaper sees it."""
    lease = timezone.now() + timedelta(seconds=seconds)
    if not Directive.objects.filter(_owned(directive)).update(lease_until=lease):
        return False
    directive.lease_until = lease
    return True


def _record(directive: Directive, status: str, error: str, *, bookkeeping_only: bool = False) -> bool:
    """Write the outcome if this claim still owns the row (see :func:`_owned`); one
    ``UPDATE`` through a plain cursor (:func:`omniman.directives.sql.record_outcome`).

    ``bookkeeping_only``: the statement commits on its own and carries no write of the
    handler, so it may commit asynchronously (see :data:`omniman.directives.sql.ASYNC_COMMIT`)."""
    conn = connections[DEFAULT_DB_ALIAS]
    async_commit = (bookkeeping_only and conn.vendor == "postgresql" and not conn.in_atomic_block
                    and conf.get("DIRECTIVE_ASYNC_COMMIT"))
    return sql.record_outcome(conn, directive, status, error[:MAX_ERROR_CHARS], now=timezone.now(),
                              async_commit=async_commit)


def _fail(directive: Directive, error: str, *, exc_info: bool = False) -> str | None:
    if not _record(directive, Status.FAILED, error):
        return None
    directive.status, directive.last_error, directive.lease_until = Status.FAILED, error, None
    logger.error(
        "directive %s (%s) failed after %s attempt(s): %s",
        directive.pk, directive.topic, directive.attempts, error, exc_info=exc_info,
    )
    signals.directive_failed.send(Directive, directive=directive)
    return Status.FAILED


def _retry(
    directive: Directive, error: str, delay: float | None = None, *, level: int = logging.WARNING,
    exc_info: bool = False,
) -> str | None:
    """Queue the directive again after a failed attempt, or fail it on its last one.

    Logs the attempt with its reason (``error``) at ``level``: WARNING for an error,
    with the traceback when ``exc_info``; INFO when the handler asked to retry."""
    if directive.attempts >= directive.max_attempts:
        return _fail(directive, error, exc_info=exc_info)
    now = timezone.now()
    wait = backoff_seconds(directive.attempts) if delay is None else max(float(delay), 0.0)
    # dispatched_at stays before the new available_at: "not sent since due", so the
    # reaper sends it when due.
    updated = Directive.objects.filter(_owned(directive)).update(
        status=Status.QUEUED,
        last_error=error[:MAX_ERROR_CHARS],
        lease_until=None,
        available_at=now + timedelta(seconds=wait),
        updated_at=now,
    )
    if not updated:
        return None
    logger.log(
        level,
        "directive %s (%s) attempt %s/%s failed: %s; next attempt in %.3fs",
        directive.pk, directive.topic, directive.attempts, directive.max_attempts, error, wait,
        exc_info=exc_info,
    )
    return Status.QUEUED
