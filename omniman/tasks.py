"""Celery tasks: thin wrappers over ``omniman.directives``.

``run_directive`` acknowledges late and is rejected (requeued) when its worker dies,
so a message is never lost with a worker; the claim in the database makes a second
delivery harmless. Neither task stores a result."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import shared_task

from omniman import directives


@shared_task(name="omniman.run_directive", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_directive_task(directive_id: int, sent_at: float | None = None) -> str | None:
    """Claim and run one directive (a no-op when another worker has it).

    ``sent_at`` is the sender's clock (a POSIX timestamp) when it found the directive
    due: a worker whose clock lags behind still claims it (see
    :func:`omniman.directives.claim`)."""
    due_by = datetime.fromtimestamp(sent_at, tz=UTC) if sent_at is not None else None
    return directives.run_directive(directive_id, due_by=due_by)


@shared_task(name="omniman.reap_directives", ignore_result=True, expires=60)
def reap_directives_task() -> dict[str, int]:
    """One reaper pass; scheduled by beat (see :func:`omniman.celery.beat_schedule`)."""
    return directives.reap()


@shared_task(name="omniman.housekeeping", ignore_result=True, expires=600)
def housekeeping_task() -> dict[str, int]:
    """Every retention job once (:func:`omniman.services.retention.housekeeping`);
    scheduled by beat (see :func:`omniman.celery.beat_schedule`)."""
    from omniman.services.retention import housekeeping

    return housekeeping()
