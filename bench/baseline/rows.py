"""The baseline's row work in plain ORM calls: what any Django view doing the same job
would write, with no validation, preconditions, idempotency or grants."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from omniman.models import Channel, Order, OrderItem, Session, SessionLine


def lock(channel: Channel | str, key: str) -> Session:
    filters = {"channel": channel} if isinstance(channel, Channel) else {"channel__code": channel}
    return (
        Session.objects.select_for_update(of=("self",))
        .select_related("channel")
        .get(session_key=key, **filters)
    )


def lock_update(channel: Channel | str, key: str, ops: list[dict[str, Any]]) -> Session:
    """Lock the session row, set the qty of the named lines (one bulk UPDATE), keep the
    totals, write the session row once."""
    with transaction.atomic():
        s = lock(channel, key)
        lines = {line.line_id: line for line in
                 SessionLine.objects.filter(session=s, line_id__in=[op["line_id"] for op in ops])}
        delta = 0
        for op in ops:
            line = lines[op["line_id"]]
            qty = Decimal(str(op["qty"]))
            total = int(qty * line.unit_price_q)
            delta += total - line.line_total_q
            line.qty, line.line_total_q = str(qty), total
        SessionLine.objects.bulk_update(list(lines.values()), ["qty", "line_total_q"])
        s.subtotal_q += delta
        s.total_q += delta
        s.pricing = {"subtotal_q": s.subtotal_q, "adjustments": [], "total_q": s.total_q}
        s.rev += 1
        s.version += 1
        s.updated_at = timezone.now()
        s.save(update_fields=["pricing", "subtotal_q", "total_q", "rev", "version", "updated_at"])
        s.set_items(None)
    return s


def commit(channel: Channel | str, key: str) -> tuple[Order, Session, int]:
    """Lock the session row, write the order and its items (one bulk INSERT), close it."""
    with transaction.atomic():
        s = lock(channel, key)
        ch = s.channel
        lines = list(SessionLine.objects.filter(session=s).order_by("position"))
        order = Order.objects.create(
            ref=f"{ch.code.upper()}-{secrets.token_hex(5).upper()}", channel=ch, session=s,
            session_key=s.session_key, data=s.data, pricing=s.pricing, total_q=s.total_q,
            currency=ch.currency, status="new", placed_at=timezone.now(),
        )
        OrderItem.objects.bulk_create([
            OrderItem(order=order, position=i, line_id=line.line_id, sku=line.sku, qty=Decimal(line.qty),
                      unit_price_q=line.unit_price_q, line_total_q=line.line_total_q, meta=line.meta)
            for i, line in enumerate(lines)
        ])
        s.state = Session.State.COMMITTED
        s.order_ref = order.ref
        s.version += 1
        s.save(update_fields=["state", "order_ref", "version", "updated_at"])
    return order, s, len(lines)
