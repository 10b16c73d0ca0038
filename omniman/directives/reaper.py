"""Recovery: return expired leases to the queue and send due rows that were not
sent (the beat task ``omniman.reap_directives`` and ``omniman_dispatch_directives``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from omniman import conf, signals
from omniman.directives.dispatch import mark_unsent, send_with_outcomes
from omniman.models import Directive

# The package logger, as before the runner was split in modules: hosts configure it by name.
logger = logging.getLogger("omniman.directives")

Status = Directive.Status


def reap(*, limit: int | None = None) -> dict[str, int]:
    """One recovery pass: expired leases go back to ``queued`` (or to ``failed`` when
    that was their last attempt), then due queued rows not sent since they became due
    (or sent over ``DIRECTIVE_REDISPATCH_AFTER_SECONDS`` ago) are sent, oldest first.

    Returns counts: ``reclaimed`` leases, ``dispatched`` and ``unsent`` directives, and
    ``failed``: the directives that became failed during this pass (a lease expired on
    the last attempt, or, with the inline backend, which runs them here, a run that
    failed for good)."""
    now = timezone.now()
    limit = conf.get("DIRECTIVE_REAPER_BATCH") if limit is None else limit
    expired = Directive.objects.filter(status=Status.RUNNING, lease_until__lt=now)
    last = list(expired.filter(attempts__gte=F("max_attempts")).values_list("pk", flat=True)[:limit])
    exhausted = 0
    if last:
        exhausted = expired.filter(pk__in=last).update(
            status=Status.FAILED,
            last_error="The lease expired on the last attempt (worker lost or handler too slow).",
            lease_until=None,
            updated_at=now,
        )
        for directive in Directive.objects.filter(pk__in=last, status=Status.FAILED, updated_at=now):
            logger.error("directive %s (%s) failed: lease expired on its last attempt",
                         directive.pk, directive.topic)
            signals.directive_failed.send(Directive, directive=directive)
    reclaimed = expired.update(status=Status.QUEUED, lease_until=None, available_at=now, updated_at=now)
    if reclaimed:
        logger.warning("%d directive(s) with an expired lease returned to the queue", reclaimed)

    grace = now - timedelta(seconds=conf.get("DIRECTIVE_REDISPATCH_AFTER_SECONDS"))
    due = list(
        Directive.objects.filter(status=Status.QUEUED, available_at__lte=now)
        .filter(
            Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=F("available_at")) | Q(dispatched_at__lt=grace)
        )
        .order_by("available_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    unsent: list[int] = []
    outcomes: list[str | None] = []
    if due:
        # Mark first: in process the run itself updates the rows, and a worker may
        # claim a row before this pass ends.
        Directive.objects.filter(pk__in=due, status=Status.QUEUED).update(dispatched_at=timezone.now())
        unsent, outcomes = send_with_outcomes(due, wait_for_broker=False)
        if unsent:
            mark_unsent(unsent)
    return {
        # Leases expired on a last attempt, and (in process) runs of this pass that failed.
        "failed": exhausted + outcomes.count(Status.FAILED),
        "reclaimed": reclaimed,
        "dispatched": len(due) - len(unsent),
        "unsent": len(unsent),
    }


def dispatch_due() -> None:
    """One reaper pass that never raises (after a commit that could not send by id)."""
    try:
        reap()
    except Exception:
        logger.exception("dispatch of due directives failed; the reaper will send them")
