"""Celery tasks: thin wrappers over ``omniman.directives``."""

from __future__ import annotations

from celery import shared_task

from omniman import directives


@shared_task(name="omniman.run_directive", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_directive_task(directive_id: int) -> str | None:
    return directives.run_directive(directive_id)


@shared_task(name="omniman.reap_directives", ignore_result=True)
def reap_directives_task() -> dict[str, int]:
    return directives.reap()
