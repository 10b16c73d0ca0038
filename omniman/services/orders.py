"""Order services: the only way an order's status changes."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from omniman import extensions, signals
from omniman.exceptions import FieldError, TransitionNotAllowed, ValidationError
from omniman.models import Order, OrderEvent
from omniman.services.directive_outbox import enqueue_many
from omniman.services.locks import ChannelRef, lock_order
from omniman.services.preconditions import Expected, check_preconditions

logger = logging.getLogger(__name__)

#: The longest transition ``reason``, in characters.
MAX_REASON_LENGTH = 500


def status_directive_specs(
    topics: tuple[str, ...], *, order_ref: str, channel_code: str, old: str | None, new: str, reason: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """The directives a channel's ``status_directives`` gives for an order entering ``new``."""
    payload = {"order_ref": order_ref, "channel_code": channel_code, "from": old, "to": new, "reason": reason}
    return [(topic, dict(payload)) for topic in topics]


def _check_reason(reason: Any) -> None:
    if reason is not None and (not isinstance(reason, str) or "\x00" in reason or len(reason) > MAX_REASON_LENGTH):
        raise ValidationError(FieldError(
            "/reason", f"reason must be text of at most {MAX_REASON_LENGTH} characters (no NUL).", "invalid"
        ))


def transition_order(
    *,
    ref: str,
    to: str,
    channel: ChannelRef | None = None,
    expected_version: Expected | None = None,
    actor: str = "",
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Order:
    """Move an order to ``to`` along its channel's ``order_flow``, writing an OrderEvent
    (with ``reason``, free text of at most 500 characters, when given) and enqueueing
    the channel's ``status_directives`` for ``to``, all in one transaction.
    ``expected_version``: the order's ``version`` the caller last saw (see
    :func:`~omniman.services.preconditions.check_preconditions`)."""
    if not isinstance(to, str) or not to or len(to) > 64:
        raise ValidationError(FieldError("/to", "to must be a status name.", "invalid"))
    _check_reason(reason)
    with transaction.atomic():
        order = lock_order(ref, channel)
        check_preconditions(order, expected_version=expected_version)
        allowed = order.channel.conf.allowed_next(order.status)
        if to not in allowed:
            raise TransitionNotAllowed(
                f"{order.status!r} → {to!r} is not allowed; from {order.status!r}: "
                + (", ".join(allowed) or "no transitions") + "."
            )
        extensions.check_transition(order, to)
        old = order.status
        order.status = to
        order.version += 1
        order.updated_at = timezone.now()
        order.save(update_fields=["status", "version", "updated_at"])
        event = {"from": old, "to": to, **(payload or {})}
        if reason is not None:
            event["reason"] = reason
        OrderEvent.objects.create(order=order, type="order.status_changed", actor=actor, payload=event)
        conf_ = order.channel.conf
        if conf_.status_directives.get(to):
            enqueue_many(status_directive_specs(
                conf_.status_directives[to], order_ref=order.ref, channel_code=order.channel.code,
                old=old, new=to, reason=reason,
            ))
        transaction.on_commit(
            lambda: signals.order_status_changed.send(
                Order, order=order, old_status=old, new_status=to, actor=actor, reason=reason
            )
        )
    logger.info("order %s %s -> %s actor=%s", ref, old, to, actor)
    return order


def touch_order(order: Order) -> None:
    """Say that ``order``'s representation changed outside its own row (an order
    extension's fields: a payment, a refund): its ``version``, hence its ETag, moves
    on. One UPDATE; must run inside the transaction of that change, under the order's
    lock (:func:`~omniman.services.locks.lock_order`)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("touch_order() must run inside the transaction of the change")
    order.version += 1
    order.updated_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(version=order.version, updated_at=order.updated_at)
