"""The Celery task that runs one directive: what :mod:`omniman.directives.dispatch`
publishes. Apart from :mod:`omniman.tasks` so that publishing does not import the
reaper, which publishes through this task.

It acknowledges late and is rejected (requeued) when its worker dies, so a message is
never lost with a worker; the claim in the database makes a second delivery harmless.
It stores no result."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import shared_task

from omniman.directives.runner import run_directive


@shared_task(name="omniman.run_directive", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_directive_task(directive_id: int, sent_at: float | None = None) -> str | None:
    """Claim and run one directive (a no-op when another worker has it).

    ``sent_at`` is the sender's clock (a POSIX timestamp) when it found the directive
    due: a worker whose clock lags behind still claims it (see
    :func:`omniman.directives.runner.claim`)."""
    due_by = datetime.fromtimestamp(sent_at, tz=UTC) if sent_at is not None else None
    return run_directive(directive_id, due_by=due_by)
