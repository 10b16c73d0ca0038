"""Deterministic interleavings on PostgreSQL: run a step in a thread, and go on once
the database shows it waiting on a lock (never after a sleep that merely hopes so)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connection, connections

TIMEOUT = 60  # seconds: a step that never blocks (or never ends) fails the test instead of hanging it


LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


def wait_until_blocked(future: Future | None = None, *, count: int = 1) -> None:
    """Return once ``count`` backends of the test database wait on a lock (row,
    transaction or advisory); fail if ``future`` ends first (the step did not block:
    the interleaving under test did not happen).

    The probe is a connection of its own: pg_stat_activity is a snapshot per
    transaction, so a reader inside the test's transaction would never see a change."""
    probe = connections.create_connection("default")
    deadline = time.monotonic() + TIMEOUT
    try:
        with probe.cursor() as cursor:
            while True:
                cursor.execute(LOCK_WAITERS)
                if cursor.fetchone()[0] >= count:
                    return
                if future is not None and future.done():
                    raise AssertionError(f"the step ended without waiting on a lock: {future.result()!r}")
                if time.monotonic() > deadline:
                    raise AssertionError("no backend waited on a lock")
                time.sleep(0.005)  # polling an observable state, not a guess at timing
    finally:
        probe.close()


def in_thread(pool: ThreadPoolExecutor, fn: Callable[[], Any]) -> Future:
    """``fn()`` on a thread of its own, with its own connection (closed after);
    its exception, if any, is its result."""

    def run() -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects the outcome
            return exc
        finally:
            connection.close()

    return pool.submit(run)
