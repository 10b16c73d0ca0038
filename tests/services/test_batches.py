"""Batch jobs (retention, expiry) lock their rows through ``locks.in_locked_batches``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from omniman.models import Directive
from omniman.services.locks import lock_directive
from omniman.services.retention import purge_directives

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
