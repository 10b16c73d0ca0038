"""Retention: what may ever be deleted, and when.

Only three kinds of rows are ever deleted: expired idempotency keys
(:func:`omniman.services.idempotency.purge_expired`), sessions that ended without
an order (abandoned, or open but expired) once they are older than
``OMNIMAN["SESSION_RETENTION_DAYS"]``, and directives that are ``done`` since longer
than ``OMNIMAN["DIRECTIVE_RETENTION_DAYS"]``. Committed sessions, orders, their items
and events, and directives that are queued, running or failed are kept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from omniman import conf
from omniman.models import Directive, Session
from omniman.services.idempotency import purge_expired
from omniman.services.locks import in_locked_batches
from omniman.services.sessions import expire_sessions

logger = logging.getLogger(__name__)


def purge_sessions(*, now: datetime | None = None, days: int | None = None, batch_size: int = 500) -> int:
    """Delete abandoned sessions closed more than ``days`` ago (default: the
    ``SESSION_RETENTION_DAYS`` setting) and open sessions that expired that long ago;
    returns how many. Batches of ``batch_size``, each its own transaction; rows that a
    request holds right now are skipped. Committed sessions are never deleted."""
    now = now or timezone.now()
    days = conf.get("SESSION_RETENTION_DAYS") if days is None else days
    cutoff = now - timedelta(days=days)
    stale = (
        Q(state=Session.State.ABANDONED, ended__lt=cutoff)
        | Q(state=Session.State.OPEN, expires_at__lt=cutoff)
    )

    def delete(ids: list[int]) -> int:
        _, by_model = Session.objects.filter(
            pk__in=ids, state__in=[Session.State.ABANDONED, Session.State.OPEN], order__isnull=True
        ).delete()  # the session's lines go with it
        return int(by_model.get(Session._meta.label, 0))

    rows = Session.objects.annotate(ended=Coalesce("closed_at", "updated_at")).filter(stale, order__isnull=True)
    return in_locked_batches(rows, delete, batch_size=batch_size, logger=logger, done="purged %s sessions")


def purge_directives(*, now: datetime | None = None, days: int | None = None, batch_size: int = 1000) -> int:
    """Delete directives ``done`` more than ``days`` ago (default: the
    ``DIRECTIVE_RETENTION_DAYS`` setting); returns how many. Queued, running and
    failed ones are never deleted (a failed one waits for an operator). Batches of
    ``batch_size``, each its own transaction, skipping rows someone holds."""
    now = now or timezone.now()
    days = conf.get("DIRECTIVE_RETENTION_DAYS") if days is None else days
    cutoff = now - timedelta(days=days)

    def delete(ids: list[int]) -> int:
        deleted, _ = Directive.objects.filter(pk__in=ids, status=Directive.Status.DONE).delete()
        return deleted

    rows = Directive.objects.filter(status=Directive.Status.DONE, updated_at__lt=cutoff)
    return in_locked_batches(rows, delete, batch_size=batch_size, logger=logger, done="purged %s directives")


def housekeeping(*, now: datetime | None = None) -> dict[str, int]:
    """Every retention job once, each in its own batches: delete ended sessions past
    their retention, abandon the open sessions that expired, delete done directives
    and expired idempotency keys past theirs. Returns how many rows each job touched. Run it from
    beat (:func:`omniman.celery.beat_schedule`), cron (``omniman_housekeeping``) or
    your own scheduler; running it twice at once is harmless (rows a job holds are
    skipped by the other)."""
    now = now or timezone.now()
    counts = {
        # Purge first: a session that expired long ago is deleted now, not abandoned
        # today and kept for another retention period.
        "purged_sessions": purge_sessions(now=now),
        "expired_sessions": expire_sessions(now=now),
        "purged_directives": purge_directives(now=now),
        "purged_idempotency_keys": purge_expired(now),
    }
    if any(counts.values()):
        logger.info("housekeeping: %s", counts)
    return counts
