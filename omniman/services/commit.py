"""Commit: turn an open session into an Order, exactly once per idempotency key."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from omniman import signals
from omniman.exceptions import (
    AlreadyCommitted,
    BlockReason,
    CommitBlocked,
    ExternalRefExists,
    SessionNotOpen,
)
from omniman.models import Channel, Order, OrderEvent, Session
from omniman.models.queries import copy_lines_to_order
from omniman.registry import registry
from omniman.services import idempotency
from omniman.services.directive_outbox import enqueue_many
from omniman.services.lines import complete_state
from omniman.services.locks import ChannelRef, lock_session, stream_lock
from omniman.services.numbers import COUNTER_UPSERT, LAST, business_day, next_number
from omniman.services.orders import status_directive_specs
from omniman.services.preconditions import Expected, check_preconditions, require_active

logger = logging.getLogger(__name__)

_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
REF_ATTEMPTS = 3
# What a commit answers, recorded with its idempotency key (the API's 201 Created).
CREATED = 201


@dataclass(frozen=True)
class CommitResult:
    """The answer to a commit; ``replayed`` when it came from the idempotency store."""

    order_ref: str
    body: dict[str, Any]
    replayed: bool = False
    order: Order | None = None


def new_order_ref(channel_code: str) -> str:
    token = "".join(secrets.choice(_REF_ALPHABET) for _ in range(10))
    return f"{channel_code.upper()[:12]}-{token[:5]}-{token[5:]}"


def commit_body(order: Order, *, channel_code: str, items_count: int) -> dict[str, Any]:
    return {
        "order_ref": order.ref,
        "status": order.status,
        "total_q": order.total_q,
        "currency": order.currency,
        "items_count": items_count,
        "session_key": order.session_key,
        "channel_code": channel_code,
    }


def block_reasons(session: Session) -> list[BlockReason]:
    """Why ``session`` cannot be committed now (empty when it can)."""
    channel = session.channel
    reasons = []
    if not session.line_count:
        reasons.append(BlockReason("empty_session", "The session has no lines."))
    for code in channel.conf.required_checks_on_commit:
        check = session.checks.get(code)
        if check is None:
            reasons.append(BlockReason("missing_check", f"Check {code!r} has not run yet.", code))
        elif check.get("rev") != session.rev:
            reasons.append(BlockReason(
                "stale_check", f"Check {code!r} ran for rev {check.get('rev')}, not {session.rev}.", code
            ))
        elif not check.get("ok"):
            reasons.append(BlockReason("failed_check", f"Check {code!r} did not pass.", code))
    for issue in session.issues:
        if issue.get("blocking"):
            reasons.append(BlockReason("blocking_issue", issue.get("message") or "A blocking issue is open.", issue.get("id")))
    validators = registry.validators_for("commit")
    if validators:  # they see every line: one more query, only when any is registered
        state = complete_state(session)
        for validator in validators:
            for problem in validator(channel=channel, state=state, stage="commit"):
                reasons.append(BlockReason(problem.code, problem.detail))
    return reasons


def _external_ref(session: Session) -> str:
    path = session.channel.conf.external_ref_path
    if not path:
        return ""
    node: Any = session.data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return str(node)[:128] if node is not None and not isinstance(node, (dict, list)) else ""


def commit_session(
    *,
    channel: ChannelRef,
    session_key: str,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    expected_version: Expected | None = None,
    actor: str = "",
) -> CommitResult:
    """Seal an open session into an Order.

    One transaction (:func:`~omniman.services.idempotency.run_idempotent`): lock the
    session, replay the stored answer for a known key (another fingerprint is
    ``IdempotencyKeyReused``), check that the session may be committed, then write the
    Order, its items, its first event, the post-commit directives, the idempotency
    record and the session's new state; the order takes its channel's next ticket
    number (:mod:`omniman.services.numbers`) in the same transaction. Run again on an
    integrity error (an order ref drawn twice, or the key recorded meanwhile by a
    commit of another session)."""
    request = None
    if idempotency_key is not None:
        idempotency.check_key(idempotency_key)
        request = idempotency.IdempotentRequest(
            key=idempotency_key,
            fingerprint=fingerprint or idempotency.fingerprint("commit", session_key),
            answer=lambda result: idempotency.Replay(CREATED, result.body, {}),
        )

    def lock() -> tuple[Channel, Session]:
        session = lock_session(channel, session_key)
        return session.channel, session

    outcome = idempotency.run_idempotent(
        request,
        lock=lock,
        write=lambda session: _commit_locked(session, expected_version, actor),
        last=lambda session, result: _close(session, result, actor),
        attempts=REF_ATTEMPTS,
        on_retry=lambda _: logger.warning("commit retried after an integrity error session_key=%s", session_key),
    )
    if outcome.replay is not None:
        body = outcome.replay.body
        return CommitResult(order_ref=body.get("order_ref", ""), body=body, replayed=True)
    result = outcome.result
    assert result is not None
    logger.info("order committed channel=%s session_key=%s order_ref=%s",
                result.body["channel_code"], session_key, result.order_ref)
    return result


def _commit_locked(
    session: Session, expected_version: Expected | None, actor: str, placed_at: datetime | None = None
) -> CommitResult:
    ch = session.channel
    if session.state == Session.State.COMMITTED:
        raise AlreadyCommitted(session.order_ref)
    if session.state != Session.State.OPEN:
        raise SessionNotOpen(state=session.state)
    require_active(ch)
    check_preconditions(session, expected_version=expected_version)
    reasons = block_reasons(session)
    if reasons:
        raise CommitBlocked(reasons)

    external_ref = _external_ref(session)
    if external_ref:
        _require_new_external_ref(ch, external_ref)

    now = timezone.now()
    order = Order.objects.create(
        ref=new_order_ref(ch.code),
        channel=ch,
        session=session,
        session_key=session.session_key,
        handle_type=session.handle_type,
        handle_ref=session.handle_ref,
        data=session.data,
        pricing=session.pricing,
        total_q=session.total_q,
        currency=ch.currency,
        external_ref=external_ref,
        placed_at=placed_at or now,
        status=ch.conf.initial_status,
    )
    copy_lines_to_order(session.pk, order.pk)
    OrderEvent.objects.create(
        order=order,
        type="order.committed",
        actor=actor,
        payload={"status": order.status, "session_rev": session.rev, "total_q": order.total_q},
    )
    # The post-commit directives and those of the order's first status, in one INSERT.
    specs = status_directive_specs(
        ch.conf.status_directives.get(order.status, ()), order_ref=order.ref, channel_code=ch.code,
        old=None, new=order.status, reason=None,
    )
    if ch.conf.post_commit_directives:
        payload = {"order_ref": order.ref, "channel_code": ch.code, "session_key": session.session_key}
        specs = [(topic, dict(payload)) for topic in ch.conf.post_commit_directives] + specs
    if specs:
        enqueue_many(specs)
    body = commit_body(order, channel_code=ch.code, items_count=session.line_count)
    session.state = Session.State.COMMITTED
    session.order_ref = order.ref
    session.version += 1
    session.closed_at = now
    session.updated_at = now
    return CommitResult(order_ref=order.ref, body=body, order=order)


def _require_new_external_ref(channel: Channel, external_ref: str) -> None:
    """``ExternalRefExists`` when an order of ``channel`` has ``external_ref`` (one query,
    on the unique index). Two commits racing past this both insert; the unique index
    fails the later one, and its retry by ``run_idempotent`` lands here."""
    existing = (
        Order.objects.filter(channel=channel, external_ref=external_ref).values_list("ref", flat=True).first()
    )
    if existing is not None:
        raise ExternalRefExists(existing, external_ref)


def _close(session: Session, result: CommitResult, actor: str) -> None:
    """After the key's record: save the session's new state, then hand out the order's
    stream position and ticket number, the last statements before COMMIT."""
    order = result.order
    assert order is not None
    session.save(update_fields=["state", "order_ref", "version", "closed_at", "updated_at"])
    _assign_position_and_number(order)
    transaction.on_commit(
        lambda: signals.order_committed.send(Order, order=order, session=session, actor=actor)
    )


def _assign_position_and_number(order: Order) -> None:
    """Give the order its position in its channel's stream and its ticket number, last
    thing before COMMIT and under the channel's lock held until then, so a channel's
    positions are handed out in commit order (one index lookup on (channel,
    channel_seq)). The ticket counter's row stays locked until COMMIT too, and a
    rollback gives the number back. Taken here rather than with the order's INSERT, the
    commits of one channel wait for each other only over the lock, one statement and
    the COMMIT: on PostgreSQL the counter's upsert rides in the position's ``UPDATE``
    (a data-modifying ``WITH``); SQLite, which has none, runs it just before."""
    stream_lock(order.channel_id)
    channel = order.channel
    day = business_day(channel, order.created_at)
    numbered = channel.conf.ticket_numbers != "none"
    table = connection.ops.quote_name(Order._meta.db_table)
    position = f"(SELECT COALESCE(MAX(channel_seq), 0) + 1 FROM {table} WHERE channel_id = %s)"
    day_value = connection.ops.adapt_datefield_value(day)
    if numbered and connection.vendor == "postgresql":
        sql = (f"WITH n AS ({COUNTER_UPSERT}) UPDATE {table} SET channel_seq = {position}, "
               f"number = (SELECT {LAST} FROM n), business_day = %s WHERE id = %s RETURNING channel_seq, number")
        params = [channel.pk, day_value, channel.pk, day_value, order.pk]
    else:
        number = next_number(channel, day) if numbered else None
        sql = f"UPDATE {table} SET channel_seq = {position}, number = %s, business_day = %s WHERE id = %s " \
              "RETURNING channel_seq, number"
        params = [channel.pk, number, day_value, order.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        order.channel_seq, order.number = cursor.fetchone()
    order.business_day = day
