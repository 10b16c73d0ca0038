"""The Celery tasks that run directives: what :mod:`omniman.directives.dispatch`
publishes. Apart from :mod:`omniman.tasks` so that publishing does not import the
reaper, which publishes through these tasks.

They acknowledge late and are rejected (requeued) when their worker dies, so a message
is never lost with a worker; the claim in the database makes a second delivery
harmless (a directive done or running is not claimed again). They store no result."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import shared_task

from omniman.directives.runner import run_directive

logger = logging.getLogger("omniman.directives")


@shared_task(name="omniman.run_directive", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_directive_task(directive_id: int, sent_at: float | None = None) -> str | None:
    """Claim and run one directive (a no-op when another worker has it).

    ``sent_at`` is the sender's clock (a POSIX timestamp) when it found the directive
    due: a worker whose clock lags behind still claims it (see
    :func:`omniman.directives.runner.claim`)."""
    due_by = datetime.fromtimestamp(sent_at, tz=UTC) if sent_at is not None else None
    return run_directive(directive_id, due_by=due_by)


@shared_task(name="omniman.run_directives", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_directives_task(directive_ids: list[int], sent_at: float | None = None) -> dict[str, Any]:
    """Claim and run several directives, one after the other, each as
    :func:`run_directive_task` would: one message for the directives of one commit
    (up to ``DIRECTIVE_BATCH_SIZE``). Returns each id's new status (None: not claimed).

    Each is claimed just before it runs, with its own lease, so a long batch never lets
    a lease run out on a directive still waiting its turn; a worker that dies mid-batch
    has its message redelivered, and the directives already done are not run again."""
    due_by = datetime.fromtimestamp(sent_at, tz=UTC) if sent_at is not None else None
    outcomes: dict[str, Any] = {}
    for pk in directive_ids:
        try:
            outcomes[str(pk)] = run_directive(pk, due_by=due_by)
        except Exception:  # the database, not the handler (run_directive records those)
            logger.exception("directive %s could not be run; the reaper will send it again", pk)
            outcomes[str(pk)] = None
    return outcomes
