"""The JSON shapes of the API: request bodies checked once (fields and types; the
kernel owns the business rules) and resources rendered as plain dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omniman import extensions
from omniman.exceptions import FieldError, ValidationError
from omniman.models import Channel, Directive, Order, OrderEvent, OrderItem, Session
from omniman.money import format_qty
from omniman.ops import escape_pointer


def check_fields(body: dict[str, Any], *, required: Iterable[str] = (), optional: Iterable[str] = ()) -> None:
    """Every unknown field and every missing required one, each at its pointer."""
    required = tuple(required)
    allowed = set(required) | set(optional)
    errors = [
        FieldError(f"/{escape_pointer(key)}", "unknown field.", "unknown_field") for key in body if key not in allowed
    ]
    errors += [FieldError(f"/{key}", f"{key} is required.", "required") for key in required if key not in body]
    if errors:
        raise ValidationError(errors)


def session_json(session: Session, *, channel_code: str | None = None, currency: str | None = None) -> dict[str, Any]:
    channel = session.channel
    out = {
        "session_key": session.session_key,
        "channel_code": channel_code or channel.code,
        "state": session.state,
        "rev": session.rev,
        "items": [
            {
                "line_id": line["line_id"],
                "sku": line["sku"],
                "qty": line["qty"],
                "unit_price_q": line["unit_price_q"],
                "line_total_q": line["line_total_q"],
                "meta": line.get("meta") or {},
                "options": line.get("options") or [],
                "adjustments": line.get("adjustments") or [],
            }
            for line in session.items
        ],
        "data": session.data,
        "pricing": session.pricing,
        "total_q": session.total_q,
        "currency": currency or channel.currency,
        "checks": {
            code: {"rev": c.get("rev"), "ok": bool(c.get("ok")), "detail": c.get("detail") or {}, "at": c.get("at")}
            for code, c in session.checks.items()
        },
        "issues": [
            {
                "id": str(issue.get("id", "")),
                "code": str(issue.get("code", "")),
                "blocking": bool(issue.get("blocking")),
                "message": str(issue.get("message", "")),
                "actions": [
                    {"id": str(a.get("id", "")), "label": str(a.get("label", ""))}
                    for a in issue.get("actions", [])
                ],
            }
            for issue in session.issues
        ],
        "handle_type": session.handle_type,
        "handle_ref": session.handle_ref,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "expires_at": session.expires_at,
    }
    if session.order_ref:
        out["order_ref"] = session.order_ref
    return out


def item_json(item: OrderItem) -> dict[str, Any]:
    return {
        "line_id": item.line_id,
        "sku": item.sku,
        "qty": format_qty(item.qty),
        "unit_price_q": item.unit_price_q,
        "line_total_q": item.line_total_q,
        "meta": item.meta,
        "options": item.options,
        "adjustments": item.adjustments,
    }


def order_json(order: Order, items: Iterable[OrderItem] | None = None) -> dict[str, Any]:
    if items is None:
        items = order.items.all()
    out = {
        "ref": order.ref,
        "channel_code": order.channel.code,
        "session_key": order.session_key,
        "status": order.status,
        "items": [item_json(i) for i in items],
        "data": order.data,
        "pricing": order.pricing,
        "total_q": order.total_q,
        "currency": order.currency,
        "external_ref": order.external_ref,
        "number": order.number,
        "business_day": order.business_day,
        "placed_at": order.placed_at,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
    out.update(extensions.order_fields(order))
    return out


def event_json(event: OrderEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "type": event.type,
        "actor": event.actor,
        "payload": event.payload,
        "created_at": event.created_at,
    }


def directive_json(directive: Directive) -> dict[str, Any]:
    return {
        "id": directive.pk,
        "topic": directive.topic,
        "status": directive.status,
        "attempts": directive.attempts,
        "max_attempts": directive.max_attempts,
        "available_at": directive.available_at,
        "last_error": directive.last_error,
        "payload": directive.payload,
        "dispatched_at": directive.dispatched_at,
        "created_at": directive.created_at,
        "updated_at": directive.updated_at,
    }


def channel_json(channel: Channel) -> dict[str, Any]:
    conf = channel.conf
    return {
        "code": channel.code,
        "name": channel.name,
        "currency": channel.currency,
        "is_active": channel.is_active,
        "pricing_policy": conf.pricing_policy,
        "edit_policy": conf.edit_policy,
        "require_if_match": conf.require_if_match,
    }
