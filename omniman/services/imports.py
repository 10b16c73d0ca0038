"""One-call imports: a session created with its ops and committed in one transaction,
under one idempotency key. A marketplace order or a terminal's offline sale arrives
whole, is taken whole or not at all, and is taken once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from omniman import conf
from omniman.exceptions import FieldError, ValidationError
from omniman.models import Channel
from omniman.services import idempotency
from omniman.services.commit import CREATED, REF_ATTEMPTS, CommitResult, _close, _commit_locked
from omniman.services.idempotency import IdempotentRequest, Replay, lock_key, run_idempotent
from omniman.services.sessions import check_new_session, insert_session

logger = logging.getLogger(__name__)


def check_placed_at(value: Any, *, now: datetime | None = None, pointer: str = "/placed_at") -> datetime | None:
    """``value`` (an aware datetime, or None) within the bounds of the settings
    ``PLACED_AT_MAX_FUTURE_SECONDS`` and ``PLACED_AT_MAX_AGE_DAYS``."""
    if value is None:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise ValidationError(FieldError(pointer, "placed_at must be a date-time with a time zone.", "invalid"))
    try:
        placed: datetime = value.astimezone(UTC)
    except OverflowError:  # a moment before year 1 or after 9999 in UTC
        raise ValidationError(FieldError(pointer, "placed_at is out of range.", "out_of_range")) from None
    now = now or timezone.now()
    ahead = timedelta(seconds=conf.get("PLACED_AT_MAX_FUTURE_SECONDS"))
    age = timedelta(days=conf.get("PLACED_AT_MAX_AGE_DAYS"))
    if placed > now + ahead:
        raise ValidationError(FieldError(
            pointer, f"placed_at is more than {int(ahead.total_seconds())} seconds in the future.", "out_of_range"
        ))
    if placed < now - age:
        raise ValidationError(FieldError(pointer, f"placed_at is more than {age.days} days old.", "out_of_range"))
    return placed


def import_order(
    *,
    channel: Channel | str,
    ops: Any,
    idempotency_key: str | None,
    session_key: str | None = None,
    handle_type: str = "",
    handle_ref: str = "",
    data: Mapping[str, Any] | None = None,
    placed_at: datetime | None = None,
    fingerprint: str | None = None,
    actor: str = "",
) -> CommitResult:
    """Create a session, apply ``ops`` as rev 1 and commit it, in one transaction.

    All or nothing: an op that fails, a commit that is blocked, a ``session_key`` taken
    or an ``external_ref`` the channel already has (``ExternalRefExists``, naming its
    order) leaves nothing behind. ``idempotency_key`` is required: the call runs through
    :func:`~omniman.services.idempotency.run_idempotent`, serialised on the key as a
    keyed create is, and a known key replays the stored answer (``replayed``)."""
    if idempotency_key is None:
        raise ValidationError(FieldError(
            "/idempotency_key", "an import (commit: true) needs an idempotency key.", "required"
        ))
    idempotency.check_key(idempotency_key)
    new = check_new_session(
        channel=channel, session_key=session_key, handle_type=handle_type, handle_ref=handle_ref,
        data=data, ops=ops,
    )
    placed = check_placed_at(placed_at)
    request = IdempotentRequest(
        key=idempotency_key,
        fingerprint=fingerprint or idempotency.fingerprint(
            "import", new.channel.code, session_key, handle_type, handle_ref, new.data, ops,
            placed.isoformat() if placed else None,
        ),
        answer=lambda result: Replay(CREATED, result.body, {}),
    )

    def write(_: None) -> CommitResult:
        session = insert_session(new, actor=actor, retried=True)
        return _commit_locked(session, None, actor, placed_at=placed)

    def last(_: None, result: CommitResult) -> None:
        order = result.order
        assert order is not None and order.session is not None
        _close(order.session, result, actor)

    def lock() -> tuple[Channel, None]:
        lock_key(new.channel, "create", request)
        return new.channel, None

    outcome = run_idempotent(
        request,
        lock=lock,
        write=write,
        last=last,
        attempts=REF_ATTEMPTS,
        on_retry=lambda _: logger.warning(
            "import retried after an integrity error channel=%s key=%s", new.channel.code, idempotency_key
        ),
    )
    if outcome.replay is not None:
        body = outcome.replay.body
        return CommitResult(order_ref=body.get("order_ref", ""), body=body, replayed=True)
    result = outcome.result
    assert result is not None
    logger.info("order imported channel=%s order_ref=%s", new.channel.code, result.order_ref)
    return result
