"""Hand directive ids to the configured backend: run them in process, or publish
them to Celery. A dispatch that fails leaves the rows queued for the reaper."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from omniman import conf
from omniman.celery import is_fallback_app
from omniman.directives.runner import run_directive
from omniman.models import Directive

# The package logger, as before the runner was split in modules: hosts configure it by name.
logger = logging.getLogger("omniman.directives")

Status = Directive.Status

_paused_until = 0.0  # process-local: after a failed publish, leave new rows to the reaper


def send(ids: Sequence[int], *, wait_for_broker: bool = True) -> list[int]:
    """Hand directives to the configured backend; returns the ids that were not handed
    over (broker down). Never raises for a broker error: the rows stay queued.

    After a failed publish, this process skips the broker for
    ``DIRECTIVE_DISPATCH_PAUSE_SECONDS`` so that requests do not each wait on it;
    ``wait_for_broker=False`` (the reaper) tries anyway."""
    return send_with_outcomes(ids, wait_for_broker=wait_for_broker)[0]


def send_with_outcomes(ids: Sequence[int], *, wait_for_broker: bool) -> tuple[list[int], list[str | None]]:
    """:func:`send`, and the new status of each directive run in process (none
    through Celery: a worker runs them later)."""
    ids = list(ids)
    if not ids:
        return [], []
    if conf.get("DIRECTIVE_BACKEND") == "celery":
        return _publish(ids, respect_pause=wait_for_broker), []
    outcomes: list[str | None] = []
    for pk in ids:
        try:
            outcomes.append(run_directive(pk))
        except Exception:
            logger.exception("directive %s could not be run in process; the reaper will retry it", pk)
    return [], outcomes


def _publish(ids: list[int], *, respect_pause: bool) -> list[int]:
    global _paused_until
    if respect_pause and time.monotonic() < _paused_until:
        logger.warning("broker marked down: directives %s left queued for the reaper", ids)
        return ids
    # Celery is an optional dependency: imported only when it is the backend.
    from omniman.directives.worker import run_directive_task, run_directives_task

    # shared_task gives a Proxy, typed by celery-types as the Task it stands for.
    task = run_directive_task._get_current_object()  # type: ignore[attr-defined]
    batch_task = run_directives_task._get_current_object()  # type: ignore[attr-defined]
    if is_fallback_app(task.app):
        # Its broker is amqp://guest@localhost//, where none of the
        # project's workers listens. Leave the rows to the reaper (beat runs in a worker,
        # with the project's app) rather than lose the messages there.
        logger.error(
            "omniman.E202: no Celery app is loaded in this process, so directives %s were not sent "
            "(the reaper will send them). Import your app in your project package's __init__.py: "
            "`from .celery import app as celery_app`.", ids,
        )
        return ids
    options: dict[str, Any] = {"retry": False}  # the outbox is our retry: never block the caller
    if conf.get("DIRECTIVE_QUEUE"):
        options["queue"] = conf.get("DIRECTIVE_QUEUE")
    sent = 0
    # Every id here is due by this process's clock: say when, for workers whose clocks lag.
    sent_at = timezone.now().timestamp()
    size = conf.get("DIRECTIVE_BATCH_SIZE")
    try:
        with task.app.producer_or_acquire() as producer:
            for start in range(0, len(ids), size):
                batch = ids[start:start + size]
                if len(batch) == 1:
                    task.apply_async((batch[0], sent_at), producer=producer, **options)
                else:
                    batch_task.apply_async((batch, sent_at), producer=producer, **options)
                sent += len(batch)
    except Exception as exc:
        _paused_until = time.monotonic() + conf.get("DIRECTIVE_DISPATCH_PAUSE_SECONDS")
        logger.warning(
            "broker unavailable (%s): %d directive(s) left queued for the reaper", exc, len(ids) - sent
        )
        return ids[sent:]
    _paused_until = 0.0
    return []


def mark_unsent(ids: Sequence[int]) -> None:
    """Let the next reaper pass send these queued rows at once (their dispatch failed)."""
    Directive.objects.filter(pk__in=list(ids), status=Status.QUEUED).update(dispatched_at=None)


def dispatch(ids: Sequence[int]) -> None:
    """Hand directive ids to the configured backend. Never raises: a lost dispatch is
    recovered by the reaper (``omniman_dispatch_directives`` / the beat task)."""
    try:
        unsent = send(ids)
        if unsent:
            mark_unsent(unsent)
    except Exception:
        logger.exception("dispatch of directives %s failed; the reaper will send them", list(ids))
