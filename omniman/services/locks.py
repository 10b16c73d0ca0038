"""The only place that builds locking querysets. Each locks one row (``of=self``):
joining the channel must never lock the channel row, or a channel becomes one hot row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from omniman.exceptions import NotFound
from omniman.models import Channel, Order, Session
from omniman.models.queries import LinesJSON

# ``lock_session(lines=ALL_LINES)``: bring every line with the lock.
ALL_LINES = "all"


def _for_update(qs: QuerySet) -> QuerySet:
    if connection.features.has_select_for_update_of:
        return qs.select_for_update(of=("self",))
    return qs.select_for_update()


def channel_filter(channel: Channel | str) -> dict[str, object]:
    return {"channel": channel} if isinstance(channel, Channel) else {"channel__code": channel}


def lock_session(
    channel: Channel | str,
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
        return qs.get(session_key=session_key, **channel_filter(channel))
    except Session.DoesNotExist:
        raise NotFound("No such session.") from None


def _snapshot_version() -> Subquery:
    return Subquery(Session.objects.filter(pk=OuterRef("pk")).values("version")[:1])


def lock_expired_sessions(now: datetime, limit: int) -> list[int]:
    """Ids of open sessions expired at ``now``, locked in ``pk`` order; rows another
    transaction holds are skipped rather than waited for."""
    qs = Session.objects.filter(state=Session.State.OPEN, expires_at__lt=now).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.values_list("pk", flat=True)[:limit])


def lock_order(ref: str, channel: Channel | str | None = None) -> Order:
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
