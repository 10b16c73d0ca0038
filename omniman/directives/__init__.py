"""Running directives: claim a row, call its handler, record the outcome.

Writing them is the outbox's job (:mod:`omniman.services.directive_outbox`); operators act on
them through :mod:`omniman.services.directive_ops`. This package runs them:

* :mod:`omniman.directives.runner`: claim one row, run its handler, record the outcome;
* :mod:`omniman.directives.dispatch`: hand ids to the backend (in process, or Celery);
* :mod:`omniman.directives.reaper`: recover expired leases and send what was not sent;
* :mod:`omniman.directives.worker`: the Celery task that runs one directive.

The same code runs in process (``DIRECTIVE_BACKEND = "inline"``) and in a Celery
worker (``"celery"``), so behaviour does not depend on the deployment.

The rules, all kept in the database (never in a broker ETA nor in process memory):

* **Claim.** ``queued`` and due (``available_at <= now``) → ``running``, ``attempts + 1``,
  ``lease_until = now + DIRECTIVE_LEASE_SECONDS``, in one conditional ``UPDATE``. A claim
  that changes no row means another worker has it (or it is not due): nothing runs.
* **Run.** The handler runs in a transaction together with the row's ``done`` update:
  its database writes and the outcome commit together or not at all. A handler that
  lost its lease (reaped, then claimed by another worker) has its writes rolled back.
  Side effects outside the database must be idempotent by ``ctx.idempotency_key``.
* **Retry.** An exception (or :class:`~omniman.exceptions.RetryLater`) puts the row back
  to ``queued`` with ``available_at`` pushed by exponential backoff with jitter, until
  ``max_attempts``; then ``failed`` with ``last_error``.
  :class:`~omniman.exceptions.PermanentFailure` fails it at once.
* **Reap.** :func:`~omniman.directives.reaper.reap` (beat task and ``omniman_dispatch_directives``) returns expired
  leases to ``queued`` (or fails them on their last attempt) and sends every due queued
  row that was not sent since it became due, or was sent longer than
  ``DIRECTIVE_REDISPATCH_AFTER_SECONDS`` ago.

A queued row's ``dispatched_at`` records its last dispatch: a null one, or one before
``available_at``, means "due and not sent yet"."""
