"""The framework internals the runner's raw SQL relies on (omniman/directives/sql.py).

Each test fails when a Django or psycopg upgrade changes one of them, before a
worker claims a row it cannot read or records an outcome that matches no row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from omniman.directives import runner, sql
from omniman.models import Directive
from omniman.services.directive_outbox import enqueue

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = {"order": "R-1", "lines": [{"sku": "café", "qty": "1.5"}], "n": 3}


def _queued() -> Directive:
    with transaction.atomic():
        return enqueue("t.sql", PAYLOAD, delay=0.001)  # not sent: nothing runs it meanwhile


@pytest.mark.postgres
def test_the_claimed_row_reads_back_as_the_orm_reads_it():
    """Converters from ``get_db_converters`` and ``Model.from_db`` in
    ``concrete_fields`` order turn the returned columns into the ORM's values."""
    pk = _queued().pk
    now = timezone.now() + timedelta(seconds=1)
    claimed = sql.claim_returning(
        connection, pk, now=now, lease=now + timedelta(seconds=60), due=now, async_commit=False
    )
    assert claimed is not None
    stored = Directive.objects.get(pk=pk)
    assert claimed.status == Directive.Status.RUNNING and claimed.attempts == 1
    assert claimed.payload == PAYLOAD and isinstance(claimed.payload, dict)
    for field in Directive._meta.concrete_fields:
        assert getattr(claimed, field.attname) == getattr(stored, field.attname), field.name
    assert claimed.lease_until.tzinfo is not None and claimed._state.adding is False


@pytest.mark.postgres
def test_a_claim_that_matches_no_row_returns_none():
    pk = _queued().pk
    now = timezone.now() - timedelta(days=1)  # not due yet by this clock
    assert sql.claim_returning(connection, pk, now=now, lease=now, due=now, async_commit=False) is None


def test_an_outcome_matches_the_lease_the_orm_stored():
    """``adapt_datetimefield_value`` sends a lease that compares equal to the
    stored one (to the microsecond), and only to it."""
    pk = _queued().pk
    Directive.objects.filter(pk=pk).update(available_at=timezone.now() - timedelta(seconds=1))
    claimed = runner.claim(pk)
    assert claimed is not None
    other = Directive.objects.get(pk=pk)
    other.lease_until += timedelta(microseconds=1)
    assert sql.record_outcome(connection, other, "done", "", now=timezone.now(), async_commit=False) is False
    assert sql.record_outcome(connection, claimed, "done", "", now=timezone.now(), async_commit=False) is True
    row = Directive.objects.get(pk=pk)
    assert (row.status, row.lease_until) == (Directive.Status.DONE, None)


@pytest.mark.postgres
def test_the_driver_is_psycopg_3_and_reports_an_idle_transaction():
    """psycopg 3 (``fields.py`` adapts JSON with it) starts a transaction at the first
    statement, and ``info.transaction_status`` says whether one was sent."""
    import psycopg

    assert connection.Database is psycopg
    assert int(psycopg.pq.TransactionStatus.IDLE) == 0
    connection.ensure_connection()
    with transaction.atomic():
        assert sql.transaction_idle(connection) is True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert sql.transaction_idle(connection) is False
    assert sql.transaction_idle(connection) is True
