"""Ticket numbers: per channel and business day, from 1, with no gaps and no repeats."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import transaction
from django.db.models.signals import post_save
from django.test import override_settings
from django.utils import timezone

from omniman.models import Order, TicketCounter
from omniman.services import commit as commit_module
from omniman.services import commit_session, create_session, import_order, modify_session
from omniman.services.numbers import business_day, next_number
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


def sell(channel: str = "pos", key: str = "S", **kw) -> Order:
    create_session(channel=channel, session_key=key)
    modify_session(channel=channel, session_key=key, ops=[add_line_op()])
    ref = commit_session(channel=channel, session_key=key, **kw).order_ref
    return Order.objects.get(ref=ref)


def at(monkeypatch, moment: datetime) -> None:
    """Commit as if the clock said ``moment``."""
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_orders_are_numbered_from_1_per_business_day(pos):
    orders = [sell(key=f"S{i}") for i in range(3)]
    assert [o.number for o in orders] == [1, 2, 3]
    assert {o.business_day for o in orders} == {business_day(pos)}
    assert TicketCounter.objects.get(channel=pos).last == 3


def test_a_channel_without_ticket_numbers_numbers_nothing(db):
    make_channel("kiosk", ticket_numbers="none")
    order = sell("kiosk")
    assert order.number is None and order.business_day is not None
    assert not TicketCounter.objects.exists()


def test_channels_count_apart(pos):
    make_channel("bar")
    assert [sell("pos", "A").number, sell("bar", "A").number, sell("pos", "B").number, sell("bar", "B").number] == [
        1, 1, 2, 2
    ]


@override_settings(TIME_ZONE="America/Sao_Paulo")
def test_the_business_day_rolls_at_business_day_starts_at_in_the_project_time_zone(monkeypatch, db):
    make_channel("pos", business_day_starts_at="04:00")
    # 23:30 on 2 December in São Paulo (UTC−3): that day's first ticket.
    at(monkeypatch, datetime(2026, 12, 3, 2, 30, tzinfo=UTC))
    evening = sell(key="A")
    # 03:59 on 3 December: still the business day of 2 December.
    at(monkeypatch, datetime(2026, 12, 3, 6, 59, tzinfo=UTC))
    late = sell(key="B")
    # 04:00: a new business day, numbered from 1 again.
    at(monkeypatch, datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    morning = sell(key="C")
    assert [(o.business_day, o.number) for o in (evening, late, morning)] == [
        (date(2026, 12, 2), 1), (date(2026, 12, 2), 2), (date(2026, 12, 3), 1),
    ]


@override_settings(TIME_ZONE="America/Sao_Paulo")
def test_a_commit_that_straddles_the_day_start_keeps_the_day_of_its_order(monkeypatch, db):
    """The business day is read from the order's ``created_at``, not from the clock when
    the number is taken: an order written at 03:59:59 whose commit ends after 04:00
    stays on the evening's day (its number too), where reports by ``created_at`` put it."""
    channel = make_channel("pos", business_day_starts_at="04:00")
    create_session(channel="pos", session_key="A")
    modify_session(channel="pos", session_key="A", ops=[add_line_op()])
    at(monkeypatch, datetime(2026, 12, 3, 6, 59, 59, 900000, tzinfo=UTC))  # 03:59:59.9 in São Paulo

    def clock_passes_the_day_start(sender, instance, created, **kwargs):
        if created:
            at(monkeypatch, datetime(2026, 12, 3, 7, 0, 0, 100000, tzinfo=UTC))

    post_save.connect(clock_passes_the_day_start, sender=Order)
    try:
        result = commit_session(channel="pos", session_key="A")
    finally:
        post_save.disconnect(clock_passes_the_day_start, sender=Order)
    order = Order.objects.get()
    assert business_day(channel, order.created_at) == date(2026, 12, 2)
    assert (order.business_day, order.number) == (date(2026, 12, 2), 1)
    assert result.order.business_day == date(2026, 12, 2)
    assert TicketCounter.objects.get().business_day == date(2026, 12, 2)


@override_settings(TIME_ZONE="Asia/Tokyo")
def test_business_day_reads_the_local_clock(db):
    channel = make_channel("pos", business_day_starts_at="00:00")
    # 23:00 UTC on 2 December is 08:00 on 3 December in Tokyo.
    assert business_day(channel, datetime(2026, 12, 2, 23, 0, tzinfo=UTC)) == date(2026, 12, 3)
    late = make_channel("late", business_day_starts_at="23:59")
    assert business_day(late, datetime(2026, 12, 2, 23, 0, tzinfo=UTC)) == date(2026, 12, 2)


def test_a_rolled_back_commit_gives_its_number_back(pos):
    assert sell(key="A").number == 1
    create_session(channel="pos", session_key="B")
    modify_session(channel="pos", session_key="B", ops=[add_line_op()])

    def commit_then_fail() -> None:
        with transaction.atomic():
            commit_session(channel="pos", session_key="B")
            raise RuntimeError("the caller's transaction fails after the commit")

    with pytest.raises(RuntimeError):
        commit_then_fail()
    assert sell(key="C").number == 2
    assert TicketCounter.objects.get(channel=pos).last == 2


def test_a_commit_retried_after_an_integrity_error_keeps_the_numbers_gap_free(pos, monkeypatch):
    first = sell(key="A")
    refs = iter([first.ref, "POS-FRESH-00001"])  # the first draw collides with an existing ref
    monkeypatch.setattr(commit_module, "new_order_ref", lambda code: next(refs))
    assert sell(key="B").number == 2


def test_a_replayed_commit_keeps_its_number_and_takes_none(pos):
    order = sell(key="A", idempotency_key="K")
    again = commit_session(channel="pos", session_key="A", idempotency_key="K")
    assert again.replayed and again.order_ref == order.ref
    assert Order.objects.get(ref=again.order_ref).number == 1
    assert sell(key="B").number == 2


def test_an_import_is_numbered_like_a_commit(pos):
    sell(key="A")
    result = import_order(channel="pos", ops=[add_line_op()], idempotency_key="IMP")
    assert Order.objects.get(ref=result.order_ref).number == 2


@pytest.mark.django_db(transaction=True)
def test_next_number_needs_the_transaction_that_keeps_it(pos):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        next_number(pos, date(2026, 12, 3))
