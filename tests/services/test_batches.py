"""Batch jobs (retention, expiry) lock their rows through ``locks.in_locked_batches``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman.models import Directive, Session
from omniman.services.locks import lock_directive, lock_session
from omniman.services.retention import purge_directives
from omniman.services.sessions import create_session, expire_sessions
from omniman.testing import make_channel

pytestmark = pytest.mark.django_db(transaction=True)


def _done() -> Directive:
    return Directive.objects.create(topic="t.done", payload={}, status=Directive.Status.DONE, max_attempts=1)


@pytest.mark.postgres
def test_a_batch_skips_the_rows_a_request_holds_and_goes_on():
    """The held row is neither waited for nor deleted; every other row is, in
    batches of one."""
    held, others = _done(), [_done(), _done()]
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock_directive(held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30)
        later = timezone.now() + timedelta(days=1)
        assert purge_directives(now=later, days=0, batch_size=1) == len(others)
    finally:
        release.set()
        thread.join(30)
    assert list(Directive.objects.values_list("pk", flat=True)) == [held.pk]


def test_a_batch_job_deletes_every_row_in_batches():
    rows = [_done() for _ in range(5)]
    later = timezone.now() + timedelta(days=1)
    assert purge_directives(now=later, days=0, batch_size=2) == len(rows)
    assert not Directive.objects.exists()


@pytest.mark.postgres
def test_expiry_skips_the_session_a_request_holds_and_goes_on():
    """Expiry takes the same skip-locked batches as retention: a session held by a
    modify or commit is left open (it is no longer idle), every other one is abandoned."""
    make_channel("pos")
    keys = ["HELD", "A", "B"]
    for key in keys:
        create_session(channel="pos", session_key=key)
    Session.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock_session("pos", "HELD")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30)
        assert expire_sessions(batch_size=1) == 2
    finally:
        release.set()
        thread.join(30)
    states = dict(Session.objects.values_list("session_key", "state"))
    assert states == {"HELD": "open", "A": "abandoned", "B": "abandoned"}


def test_expiry_costs_two_statements_per_batch():
    """One read of the channels' configs, then a batch is its own transaction holding
    one locking read of the ids and one UPDATE; a short batch ends the job. (Channels
    with ``session_end_directives`` add a read of the keys and one INSERT per batch:
    tests/services/test_order_life.py.)"""
    make_channel("pos")
    for n in range(3):
        create_session(channel="pos", session_key=f"S{n}")
    Session.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        assert expire_sessions(batch_size=2) == 3
    verbs = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [v for v in verbs if v not in ("BEGIN", "COMMIT")] == ["SELECT"] + ["SELECT", "UPDATE"] * 2
    if connection.features.has_select_for_update_skip_locked:
        reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")][1:]
        assert all(sql.endswith("SKIP LOCKED") for sql in reads)
