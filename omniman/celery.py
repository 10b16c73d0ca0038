"""Celery settings that keep directives at-least-once and requests fast.

Call :func:`configure` on the host's Celery app (``config/celery.py``)::

    app = Celery("config")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    omniman.celery.configure(app)

or copy :data:`CELERY_SETTINGS` into the host's settings (with the ``CELERY_``
prefix, upper case) and :func:`beat_schedule` into ``CELERY_BEAT_SCHEDULE``."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

#: What every worker and every publisher of directives should run with.
CELERY_SETTINGS: dict[str, Any] = {
    # A message is acknowledged after its task ran, and requeued when the worker
    # process dies mid-task: no directive is lost with a worker.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # One message at a time per process: a long handler does not hold others back.
    "worker_prefetch_multiplier": 1,
    "task_ignore_result": True,
    # Publishing happens after a request's commit. With the broker down it must fail
    # at once (the row stays queued for the reaper), not retry inside the request:
    # kombu's default retries the connection for about 6 s per message.
    "task_publish_retry": False,
    "broker_connection_timeout": 2.0,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {"max_retries": 0, "socket_connect_timeout": 2.0},
}


def beat_schedule(interval: float | None = None, housekeeping: float | None = None) -> dict[str, dict[str, Any]]:
    """Beat entries: the reaper every ``interval`` seconds (default
    ``OMNIMAN["DIRECTIVE_REAPER_INTERVAL_SECONDS"]``) and housekeeping (expire idle
    sessions, purge what is past its retention) every ``housekeeping`` seconds
    (default ``OMNIMAN["HOUSEKEEPING_INTERVAL_SECONDS"]``)."""
    from omniman import conf

    if interval is None:
        interval = conf.get("DIRECTIVE_REAPER_INTERVAL_SECONDS")
    if housekeeping is None:
        housekeeping = conf.get("HOUSEKEEPING_INTERVAL_SECONDS")
    return {
        "omniman-reap-directives": {
            "task": "omniman.reap_directives",
            "schedule": float(interval),
            "options": {"expires": max(float(interval), 1.0)},
        },
        "omniman-housekeeping": {
            "task": "omniman.housekeeping",
            "schedule": float(housekeeping),
            "options": {"expires": max(float(housekeeping), 1.0)},
        },
    }


#: A connection that finished a task this recently skips Django's health check
#: (``CONN_HEALTH_CHECKS``) before the next one: it has just answered.
RECENTLY_USED_SECONDS = 1.0

_last_task_end = float("-inf")  # per worker process


def _before_task(**kwargs: Any) -> None:
    from django.db import close_old_connections, connections

    if time.monotonic() - _last_task_end > RECENTLY_USED_SECONDS:
        close_old_connections()
        return
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
        if conn.connection is not None:
            # It was used without error (or passed is_usable) under a second ago:
            # a SELECT 1 per task would be one more round trip per directive.
            # Django's own flag (read by ensure_connection); django-stubs does not declare it.
            conn.health_check_done = True  # type: ignore[attr-defined]


def _after_task(**kwargs: Any) -> None:
    from django.db import close_old_connections

    global _last_task_end
    close_old_connections()
    _last_task_end = time.monotonic()


def keep_database_connections(app: Any) -> None:
    """Let workers keep their database connections as ``CONN_MAX_AGE`` says.

    Celery's Django fix-up closes every connection before and after every task unless
    ``CELERY_DB_REUSE_MAX`` is set, so each directive would pay for a new PostgreSQL
    connection (measured: about half of a directive's time in a worker). This turns
    that off and does what Django does around a request instead: before and after
    each task, close connections that are too old or broken. With
    ``CONN_HEALTH_CHECKS``, the check (a ``SELECT 1``) runs only before a task that
    follows over :data:`RECENTLY_USED_SECONDS` of idleness, not before every task."""
    from celery.signals import task_postrun, task_prerun

    app.conf.update({"CELERY_DB_REUSE_MAX": 2**31})
    task_prerun.connect(_before_task, weak=False, dispatch_uid="omniman.celery.prerun")
    task_postrun.connect(_after_task, weak=False, dispatch_uid="omniman.celery.postrun")


def configure(app: Any, *, beat: bool = True, queue: str | None = None) -> Any:
    """Apply :data:`CELERY_SETTINGS` to ``app`` (keeping transport options the host set),
    add the reaper and housekeeping to its beat schedule, make its workers consume omniman's queue
    (``OMNIMAN["DIRECTIVE_QUEUE"]``) as well as the default one, and keep database
    connections between tasks (:func:`keep_database_connections`). Returns ``app``."""
    from kombu import Queue

    from omniman import conf

    settings = dict(CELERY_SETTINGS)
    transport = dict(settings.pop("broker_transport_options"))
    transport.update(app.conf.broker_transport_options or {})
    app.conf.update(settings, broker_transport_options=transport)
    keep_database_connections(app)
    if beat:
        schedule = dict(app.conf.beat_schedule or {})
        schedule.update(beat_schedule())
        app.conf.beat_schedule = schedule
    queue = conf.get("DIRECTIVE_QUEUE") if queue is None else queue
    if queue and not app.conf.task_queues:
        default = app.conf.task_default_queue or "celery"
        names = dict.fromkeys([default, queue])
        app.conf.task_queues = [Queue(name) for name in names]
    return app


def is_fallback_app(app: Any) -> bool:
    """Whether ``app`` is the app Celery makes up when none was loaded (``celery._state``):
    its broker is ``amqp://guest@localhost//``, not the project's."""
    return app.main == "default" and not app.fixups


WORKER_QUEUE_ERROR = "omniman.E204"
WORKER_QUEUE_WARNING = "omniman.W204"


def check_worker_queues(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """At worker start (Celery's ``celeryd_after_setup``, once ``-Q`` is applied): with the
    ``celery`` backend, a worker whose app does not even declare the directive queue
    (``OMNIMAN["DIRECTIVE_QUEUE"]``) would never run a directive, which then waits
    forever while the worker looks healthy. That is what a ``celery.py`` without
    :func:`configure` does; the worker stops with ``omniman.E204``. A worker that
    leaves the declared queue out on purpose (``-Q celery``, beside workers for
    ``omniman``) only logs ``omniman.W204``. ``SILENCED_SYSTEM_CHECKS`` silences both."""
    from django.conf import settings

    from omniman import conf

    if instance is None or conf.problems() or conf.get("DIRECTIVE_BACKEND") != "celery":
        return
    queue = conf.get("DIRECTIVE_QUEUE")
    queues = instance.app.amqp.queues
    consumed = sorted(queues.consume_from or {})
    if not queue or queue in consumed:
        return
    silenced = set(getattr(settings, "SILENCED_SYSTEM_CHECKS", ()))
    if queue in queues:
        if WORKER_QUEUE_WARNING not in silenced:
            logger.warning(
                "%s: worker %s consumes %s, not omniman's directive queue %r: make sure another "
                "worker does (celery worker -Q %s).", WORKER_QUEUE_WARNING, sender, consumed, queue, queue,
            )
        return
    if WORKER_QUEUE_ERROR in silenced:
        return
    from celery.exceptions import WorkerShutdown

    message = (
        f"{WORKER_QUEUE_ERROR}: worker {sender} consumes {consumed}, but omniman sends directives to the "
        f"queue {queue!r} (OMNIMAN['DIRECTIVE_QUEUE']), which its Celery app does not declare: no "
        "directive would ever run. Call omniman.celery.configure(app) in your celery.py, or start "
        f"workers with -Q {','.join([queue, *consumed])}."
    )
    logger.critical(message)
    raise WorkerShutdown(1)


def connect_worker_checks() -> None:
    """Connect :func:`check_worker_queues` to Celery's ``celeryd_after_setup`` (when Celery
    is installed). Called by omniman's ``AppConfig.ready``: a worker sets Django up
    before it sends that signal, whatever its ``celery.py`` says."""
    try:
        from celery.signals import celeryd_after_setup
    except ImportError:
        return
    celeryd_after_setup.connect(check_worker_queues, weak=False, dispatch_uid="omniman.celery.check_worker_queues")
