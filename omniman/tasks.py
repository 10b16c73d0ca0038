"""Celery tasks: thin wrappers over :mod:`omniman.directives` and
:mod:`omniman.services.retention`. Importing this module registers all three
(``omniman.run_directive`` is defined in :mod:`omniman.directives.worker`). No task
stores a result."""

from __future__ import annotations

from celery import shared_task

from omniman.directives.reaper import reap
from omniman.directives.worker import run_directive_task  # noqa: F401 - registered with the others
from omniman.services.retention import housekeeping


@shared_task(name="omniman.reap_directives", ignore_result=True, expires=60)
def reap_directives_task() -> dict[str, int]:
    """One reaper pass; scheduled by beat (see :func:`omniman.celery.beat_schedule`)."""
    return reap()


@shared_task(name="omniman.housekeeping", ignore_result=True, expires=600)
def housekeeping_task() -> dict[str, int]:
    """Every retention job once (:func:`omniman.services.retention.housekeeping`);
    scheduled by beat (see :func:`omniman.celery.beat_schedule`)."""
    return housekeeping()
