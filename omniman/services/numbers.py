"""Ticket numbers: a short number per channel and business day ("order 42"), handed
out inside the commit's transaction, from 1, with no gaps and no repeats.

One counter row per (channel, business day), bumped by one statement
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, on PostgreSQL and on SQLite ≥ 3.35).
The row stays locked until the commit's transaction ends: racing commits of one
channel take their numbers one after the other, commits of other channels never
wait on it, and a commit that rolls back gives its number back (a database sequence
would leave a gap there; ``MAX() + 1`` without a lock would repeat)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone

from omniman.models import Channel, ChannelConfig, Order, TicketCounter


def business_day(channel: Channel, at: datetime | None = None) -> date:
    """The channel's business day at ``at`` (default: now): the local date in the
    project's time zone, less one day before ``business_day_starts_at`` (a café open
    until 2 a.m. keeps those sales on the evening's day)."""
    local = timezone.localtime(at or timezone.now())
    day = local.date()
    return day - timedelta(days=1) if local.time() < channel.conf.day_starts_at else day


#: The counter column, quoted alike on PostgreSQL and SQLite.
LAST = '"last"'
#: The counter's upsert, parameters (channel id, business day); it returns the number.
#: The commit runs it inside its position ``UPDATE`` on PostgreSQL (one statement).
COUNTER_UPSERT = (
    f'INSERT INTO "{TicketCounter._meta.db_table}" (channel_id, business_day, {LAST}) VALUES (%s, %s, 1) '
    f'ON CONFLICT (channel_id, business_day) DO UPDATE SET {LAST} = "{TicketCounter._meta.db_table}".{LAST} + 1 '
    f"RETURNING {LAST}"
)


def next_number(channel: Channel, day: date) -> int:
    """The next ticket number of ``channel`` on ``day``, in one statement. Must run
    inside the transaction that stores the number: the counter row stays locked
    until it ends, and is put back if it rolls back."""
    if not connection.in_atomic_block:
        raise RuntimeError("next_number() must run inside the transaction that uses the number.")
    with connection.cursor() as cursor:
        cursor.execute(COUNTER_UPSERT, [channel.pk, connection.ops.adapt_datefield_value(day)])
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def in_current_business_day(qs: QuerySet[Order], at: datetime | None = None) -> QuerySet[Order]:
    """``qs`` limited to the orders of their channel's business day at ``at`` (default:
    now), in the query itself: whatever the channel, that day is the local date or the
    one before, as the local time is past the channel's ``business_day_starts_at`` or
    not (``"HH:MM"`` strings compare as the times they write)."""
    local = timezone.localtime(at or timezone.now())
    today, clock = local.date(), Value(local.strftime("%H:%M"))
    starts: Any = Coalesce(
        KeyTextTransform("business_day_starts_at", "channel__config"),
        Value(ChannelConfig.business_day_starts_at),
        output_field=TextField(),
    )
    return qs.filter(
        Q(LessThanOrEqual(starts, clock), business_day=today)
        | Q(GreaterThan(starts, clock), business_day=today - timedelta(days=1))
    )
