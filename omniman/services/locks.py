"""The only place that builds locking querysets. Each locks one row (``of=self``):
joining the channel must never lock the channel row, or a channel becomes one hot row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from omniman.exceptions import FieldError, NotFound, ValidationError
from omniman.models import Channel, Order, Session
from omniman.models.queries import LinesJSON

# ``lock_session(lines=ALL_LINES)``: bring every line with the lock.
ALL_LINES = "all"


def _for_update(qs: QuerySet) -> QuerySet:
    if connection.features.has_select_for_update_of:
        return qs.select_for_update(of=("self",))
    return qs.select_for_update()


@dataclass(frozen=True)
class GrantedChannel:
    """A channel by code, as one user may reach it. The query that finds the session
    or order also checks the grant (a join on the channel's grants, no extra
    statement): an object of a channel not granted to ``user`` is not found, exactly
    like a missing one. ``code`` None: any channel granted to ``user`` (an order's
transition names no channel). ``user`` None: every channel (superusers). ``active``: a
    session of an inactive channel is a ``validation_error`` at ``pointer``, checked
    on the channel row the same query brought."""

    code: str | None
    user: Any = None
    active: bool = False
    pointer: str = "/channel_code"


ChannelRef = Channel | str | GrantedChannel


def channel_filter(channel: ChannelRef) -> dict[str, object]:
    """The filters that limit a session or order query to ``channel``."""
    if isinstance(channel, Channel):
        return {"channel": channel}
    if isinstance(channel, GrantedChannel):
        filters: dict[str, object] = {} if channel.code is None else {"channel__code": channel.code}
        if channel.user is not None:
            filters["channel__grants__user_id"] = channel.user.pk
        return filters
    return {"channel__code": channel}


def check_active(channel: ChannelRef, found: Channel) -> None:
    """With a ``GrantedChannel`` that asks for it, an inactive ``found`` channel is a
    validation error (no query: ``found`` came with the object)."""
    if isinstance(channel, GrantedChannel) and channel.active and not found.is_active:
        raise ValidationError(FieldError(channel.pointer, "this channel is not active.", "inactive_channel"))


def lock_session(
    channel: ChannelRef,
    session_key: str,
    *,
    lines: Iterable[str] | str | None = None,
    auto_ids: int = 0,
) -> Session:
    """The session row, locked until the transaction ends, with its channel: one query.

    ``lines`` (for a modify): ``ALL_LINES`` brings every line in the same query, as
    ``session.all_lines_json``; an iterable of line ids brings those that exist, and
    the ``auto_ids`` next server-made ids, as ``session.named_lines_json``. Each line
    comes with its ``position``.

    Those lines are as of the query's snapshot. On PostgreSQL, a read that waited for
    the lock returns the row as the other transaction left it but the lines as they
    were before it: ``session.lines_version`` (the row's ``version`` in that snapshot)
    then differs from ``session.version``, and the caller must read the lines again."""
    qs = _for_update(Session.objects.select_related("channel"))
    if lines == ALL_LINES:
        qs = qs.annotate(all_lines_json=LinesJSON(positions=True), lines_version=_snapshot_version())
    elif lines is not None:
        qs = qs.annotate(named_lines_json=LinesJSON(line_ids=lines, auto=auto_ids), lines_version=_snapshot_version())
    try:
        session = qs.get(session_key=session_key, **channel_filter(channel))
    except Session.DoesNotExist:
        raise NotFound("No such session.") from None
    check_active(channel, session.channel)
    return session


def _snapshot_version() -> Subquery:
    return Subquery(Session.objects.filter(pk=OuterRef("pk")).values("version")[:1])


def lock_expired_sessions(now: datetime, limit: int) -> list[int]:
    """Ids of open sessions expired at ``now``, locked in ``pk`` order; rows another
    transaction holds are skipped rather than waited for."""
    qs = Session.objects.filter(state=Session.State.OPEN, expires_at__lt=now).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.values_list("pk", flat=True)[:limit])


def lock_order(ref: str, channel: ChannelRef | None = None) -> Order:
    """The order row, locked until the transaction ends, with its channel: one query."""
    qs = _for_update(Order.objects.select_related("channel"))
    filters = channel_filter(channel) if channel is not None else {}
    try:
        return qs.get(ref=ref, **filters)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


def stream_lock() -> None:
    """Serialise the hand-out of stream positions until this transaction ends.

    PostgreSQL: a transaction-scoped advisory lock (safe under PgBouncer's transaction
    mode). SQLite has one writer, which already commits in order."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STREAM_LOCK_KEY])


# An arbitrary constant, the same in every process: "omniman" in ASCII, truncated.
STREAM_LOCK_KEY = 0x6F6D6E696D616E


def key_lock(*parts: str) -> None:
    """Serialise requests that share ``parts`` (an idempotency key with no row to lock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["\x1f".join(parts)])
