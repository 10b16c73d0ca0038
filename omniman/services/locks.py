"""The only place that builds locking querysets. Each locks one row (``of=self``):
joining the channel must never lock the channel row, or a channel becomes one hot row.
Batch jobs (expiry, retention) lock their rows here too, skipping those a request holds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Model, QuerySet

from omniman import extensions
from omniman.exceptions import NotFound
from omniman.models import Channel, Directive, Order, Session
from omniman.models.prepared import Prepared, Slots
from omniman.models.queries import auto_param, ids_param
from omniman.services.lines import LineSelection, LoadedLines, annotate_lines, take_lines
from omniman.services.preconditions import require_active

M = TypeVar("M", bound=Model)


def _for_update(qs: QuerySet[M]) -> QuerySet[M]:
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
    if isinstance(channel, GrantedChannel) and channel.active:
        require_active(found, channel.pointer)


def prepared_filters(channel: ChannelRef, **more: Any) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """:func:`channel_filter` and ``more`` as a prepared query's shape (the names of
    the filters, ``*_id`` ones integers, the others text) and its values; None when a
    value is not of its kind (a caller's odd argument takes the queryset's own path,
    which converts or rejects it as it always has)."""
    values: dict[str, Any] = {}
    for name, value in {**channel_filter(channel), **more}.items():
        if name == "channel":
            name, value = "channel_id", value.pk
        if type(value) is not (int if name.endswith("_id") else str):
            return None
        values[name] = value
    return tuple(sorted(values)), values


def slot_filters(slots: Slots, names: tuple[str, ...]) -> dict[str, Any]:
    """The filters of :func:`prepared_filters`, with the slots' stand-ins."""
    return {name: slots.int(name) if name.endswith("_id") else slots.text(name) for name in names}


def _build_session_lock(slots: Slots, names: tuple[str, ...], lines: str | None) -> QuerySet[Session]:
    qs = _for_update(Session.objects.select_related("channel"))
    if lines is not None:
        ids = None if lines == "every" else slots.expression("line_ids", ids_param)
        auto = 0 if lines == "every" else slots.expression("auto", auto_param)
        qs = annotate_lines(qs, LineSelection(ids, auto))  # type: ignore[arg-type]  # slots stand in
    return qs.filter(**slot_filters(slots, names))


#: The locking read of a session, with the lines a modify names (or every line), or none.
_SESSION_LOCK = Prepared(Session, _build_session_lock, write=True)


def lock_session(channel: ChannelRef, session_key: str) -> Session:
    """The session row, locked until the transaction ends, with its channel: one query."""
    return _lock_session(channel, session_key, None)


def lock_session_with_lines(
    channel: ChannelRef, session_key: str, selection: LineSelection
) -> tuple[Session, LoadedLines]:
    """:func:`lock_session`, bringing in the same query the lines ``selection`` names
    (see :func:`omniman.services.lines.take_lines` for the snapshot they come from)."""
    session = _lock_session(channel, session_key, selection)
    return session, take_lines(session, selection)


def _lock_session(channel: ChannelRef, session_key: str, selection: LineSelection | None) -> Session:
    prepared = prepared_filters(channel, session_key=session_key)
    try:
        if prepared is None:
            qs = _for_update(Session.objects.select_related("channel"))
            if selection is not None:
                qs = annotate_lines(qs, selection)
            session = qs.get(session_key=session_key, **channel_filter(channel))
        else:
            names, values = prepared
            lines = None if selection is None else "every" if selection.ids is None else "named"
            if lines == "named":
                assert selection is not None
                values |= {"line_ids": selection.ids, "auto": selection.auto}
            session = _SESSION_LOCK.get((names, lines), values)
    except Session.DoesNotExist:
        raise NotFound("No such session.") from None
    check_active(channel, session.channel)
    return session


def lock_order(ref: str, channel: ChannelRef | None = None) -> Order:
    """The order row, locked until the transaction ends, with its channel (and the rows
    order extensions read beside it, unlocked): one query."""
    qs = _for_update(Order.objects.select_related("channel", *extensions.order_related()))
    filters = channel_filter(channel) if channel is not None else {}
    try:
        return qs.get(ref=ref, **filters)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


def stream_lock(channel_id: int) -> None:
    """Serialise the hand-out of one channel's stream positions until this transaction
    ends; commits on other channels do not wait.

    PostgreSQL: a transaction-scoped advisory lock on the pair (``STREAM_LOCK_CLASS``,
    channel id), safe under PgBouncer's transaction mode. SQLite has one writer, which
    already commits in order."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [STREAM_LOCK_CLASS, _int4(channel_id)]
            )


# An arbitrary constant, the same in every process: "omni" in ASCII. The two-key form
# of the lock keeps these apart from the one-key locks of key_lock().
STREAM_LOCK_CLASS = 0x6F6D6E69


def _int4(value: int) -> int:
    """``value`` folded into a signed 32-bit integer (ids beyond it share a lock, harmlessly)."""
    return (value + 2**31) % 2**32 - 2**31


def key_lock(*parts: str) -> None:
    """Serialise requests that share ``parts`` (an idempotency key with no row to lock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["\x1f".join(parts)])


def lock_directive(pk: int) -> Directive | None:
    """The directive row, locked until the transaction ends; None when there is none."""
    return Directive.objects.select_for_update().filter(pk=pk).first()


def in_locked_batches(
    rows: QuerySet[Any],
    work: Callable[[list[int]], int],
    *,
    batch_size: int,
    logger: logging.Logger,
    done: str,
) -> int:
    """Run ``work`` on the ids of ``rows``, ``batch_size`` at a time in ``pk`` order,
    each batch in its own transaction with its rows locked; rows another transaction
    holds are skipped rather than waited for. ``work`` re-checks its rows' state and
    returns how many it changed; the sum is returned, and each batch's count is
    logged as ``done`` (a message with one ``%s``) once its transaction committed."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                rows.order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return total
            changed = work(ids)
            total += changed
        logger.info(done, changed)
        if len(ids) < batch_size:
            return total
