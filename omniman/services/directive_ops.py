"""Operator actions on directives: retry a failed one, fail one by hand, metrics."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from omniman.directives.dispatch import dispatch
from omniman.exceptions import NotFound, TransitionNotAllowed
from omniman.models import Directive
from omniman.services.locks import lock_directive

logger = logging.getLogger(__name__)

Status = Directive.Status


def retry_directive(pk: int, *, actor: str = "") -> Directive:
    """failed → queued, attempts reset to 0, due now, sent after commit.

    Any other status is ``TransitionNotAllowed`` (a running one is still being tried;
    a done one must not run again); an unknown id is ``NotFound``."""
    with transaction.atomic():
        directive = lock_directive(pk)
        if directive is None:
            raise NotFound("No such directive.")
        if directive.status != Status.FAILED:
            raise TransitionNotAllowed(
                f"Only failed directives can be retried; this one is {directive.status}."
            )
        now = timezone.now()
        directive.status = Status.QUEUED
        directive.attempts = 0
        directive.available_at = now
        directive.lease_until = None
        directive.dispatched_at = now  # sent right after this commit
        directive.save(update_fields=["status", "attempts", "available_at", "lease_until", "dispatched_at",
                                      "updated_at"])
        transaction.on_commit(lambda: dispatch([pk]))
    logger.info("directive %s (%s) retried by %s", pk, directive.topic, actor or "-")
    return directive


def fail_directive(pk: int, *, actor: str = "", reason: str = "marked failed by an operator") -> bool:
    """queued or running → failed; False when it was already done or failed.

    A handler still running on it keeps running, but its outcome is not recorded
    (and, for a transactional handler, its database writes are rolled back)."""
    error = f"{reason} ({actor})" if actor else reason
    changed = Directive.objects.filter(
        pk=pk, status__in=[Status.QUEUED, Status.RUNNING]
    ).update(status=Status.FAILED, last_error=error, lease_until=None, updated_at=timezone.now())
    if changed:
        logger.warning("directive %s marked failed by %s: %s", pk, actor or "-", reason)
    return bool(changed)


@dataclass(frozen=True)
class DirectiveMetrics:
    """Counts by status and how far behind the queue is, for dashboards and alerts."""

    queued: int
    running: int
    done: int
    failed: int
    #: Seconds since the oldest queued directive was created (0 when none is queued).
    oldest_queued_age_seconds: float
    #: Seconds the longest-waiting due directive has been due (0 when none is due):
    #: above a few reaper intervals, workers or the reaper are not keeping up.
    oldest_due_wait_seconds: float
    #: Running directives whose lease expired (their worker is probably gone).
    expired_leases: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def directive_metrics(*, now: datetime | None = None) -> DirectiveMetrics:
    """Counts by status and the age of the oldest queued directive: three queries."""
    now = now or timezone.now()
    counts = dict.fromkeys(Status.values, 0)
    for row in Directive.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    queued = Directive.objects.filter(status=Status.QUEUED).order_by().aggregate(
        created=Min("created_at"), due=Min("available_at")
    )
    expired = Directive.objects.filter(status=Status.RUNNING, lease_until__lt=now).count()

    def age(moment: datetime | None) -> float:
        return max((now - moment).total_seconds(), 0.0) if moment else 0.0

    return DirectiveMetrics(
        queued=counts[Status.QUEUED],
        running=counts[Status.RUNNING],
        done=counts[Status.DONE],
        failed=counts[Status.FAILED],
        oldest_queued_age_seconds=age(queued["created"]),
        oldest_due_wait_seconds=age(queued["due"]),
        expired_leases=expired,
    )
