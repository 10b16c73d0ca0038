"""Running directives: claim a row, call its handler, record the outcome.

The same code runs in process (``DIRECTIVE_BACKEND = "inline"``) and in a Celery
worker (``"celery"``), so behaviour does not depend on the deployment."""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from omniman import conf, signals
from omniman.exceptions import PermanentFailure, RetryLater
from omniman.models import Directive
from omniman.registry import HandlerContext, registry

logger = logging.getLogger(__name__)


def send(ids: Sequence[int]) -> None:
    """Hand directives to the configured backend (called after the causing commit)."""
    if conf.get("DIRECTIVE_BACKEND") == "celery":
        from omniman.tasks import run_directive_task

        for pk in ids:
            run_directive_task.apply_async((pk,), queue=conf.get("DIRECTIVE_QUEUE"))
    else:
        for pk in ids:
            run_directive(pk)


def claim(pk: int) -> Directive | None:
    """queued and due → running, attempts + 1, with a lease; None if another worker has it."""
    now = timezone.now()
    lease = now + timedelta(seconds=conf.get("DIRECTIVE_LEASE_SECONDS"))
    claimed = Directive.objects.filter(
        pk=pk, status=Directive.Status.QUEUED, available_at__lte=now
    ).update(status=Directive.Status.RUNNING, attempts=F("attempts") + 1, lease_until=lease, updated_at=now)
    if not claimed:
        return None
    return Directive.objects.get(pk=pk)


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform(0.5, 1) × base × 2^(attempt-1), capped."""
    base = conf.get("DIRECTIVE_BACKOFF_BASE_SECONDS")
    cap = conf.get("DIRECTIVE_BACKOFF_MAX_SECONDS")
    return min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)


def run_directive(pk: int) -> str | None:
    """Claim and run one directive; returns its new status, or None when not claimed."""
    directive = claim(pk)
    if directive is None:
        return None
    log = logging.LoggerAdapter(logger, {"directive_id": directive.pk, "topic": directive.topic})
    handler = registry.get_handler(directive.topic)
    ctx = HandlerContext(
        directive_id=directive.pk,
        attempt=directive.attempts,
        max_attempts=directive.max_attempts,
        topic=directive.topic,
        logger=log,
    )
    if handler is None:
        return _finish(directive, Directive.Status.FAILED, f"No handler registered for topic {directive.topic!r}.")
    try:
        with transaction.atomic():
            handler(directive, ctx)
    except PermanentFailure as exc:
        return _finish(directive, Directive.Status.FAILED, exc.reason)
    except RetryLater as exc:
        return _retry(directive, exc.reason, exc.delay)
    except Exception as exc:
        log.warning("directive %s attempt %s raised %r", directive.pk, directive.attempts, exc)
        return _retry(directive, "".join(traceback.format_exception_only(exc)).strip())
    return _finish(directive, Directive.Status.DONE, "")


def _owned(directive: Directive) -> Q:
    return Q(pk=directive.pk, status=Directive.Status.RUNNING, attempts=directive.attempts)


def _finish(directive: Directive, status: str, error: str) -> str:
    now = timezone.now()
    Directive.objects.filter(_owned(directive)).update(
        status=status, last_error=error[:4000], lease_until=None, updated_at=now
    )
    if status == Directive.Status.FAILED:
        directive.status, directive.last_error = status, error
        logger.error("directive %s (%s) failed: %s", directive.pk, directive.topic, error)
        signals.directive_failed.send(Directive, directive=directive)
    return status


def _retry(directive: Directive, error: str, delay: float | None = None) -> str:
    if directive.attempts >= directive.max_attempts:
        return _finish(directive, Directive.Status.FAILED, error)
    now = timezone.now()
    wait = backoff_seconds(directive.attempts) if delay is None else delay
    Directive.objects.filter(_owned(directive)).update(
        status=Directive.Status.QUEUED,
        last_error=error[:4000],
        lease_until=None,
        available_at=now + timedelta(seconds=wait),
        updated_at=now,
    )
    return Directive.Status.QUEUED


def reap(*, limit: int = 1000) -> dict[str, int]:
    """Return expired leases to ``queued`` and dispatch every due queued directive."""
    now = timezone.now()
    reclaimed = Directive.objects.filter(status=Directive.Status.RUNNING, lease_until__lt=now).update(
        status=Directive.Status.QUEUED, lease_until=None, updated_at=now, available_at=now
    )
    due = list(
        Directive.objects.filter(status=Directive.Status.QUEUED, available_at__lte=now)
        .order_by("available_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    if due:
        send(due)
    return {"reclaimed": reclaimed, "dispatched": len(due)}
