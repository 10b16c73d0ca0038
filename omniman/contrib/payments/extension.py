"""What the payments app adds to orders, through :mod:`omniman.extensions`."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet

from omniman.contrib.payments.models import PaymentStatus
from omniman.contrib.payments.services import order_fields, require_paid
from omniman.exceptions import FieldError, ValidationError
from omniman.extensions import OrderExtension, OrderFilter


def _topics(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def filter_payment_status(qs: QuerySet[Any], value: str) -> QuerySet[Any]:
    """Orders in ``value``; an order with no summary row is unpaid (paid when its
    total is 0). Indexed by ``omniman_paysum_status``."""
    if value not in PaymentStatus.values:
        raise ValidationError(FieldError(
            "/payment_status", f"payment_status must be one of {', '.join(PaymentStatus.values)}.", "invalid_choice"
        ))
    condition = Q(payment_summary__status=value)
    if value == PaymentStatus.UNPAID:
        condition |= Q(payment_summary__isnull=True, total_q__gt=0)
    elif value == PaymentStatus.PAID:
        condition |= Q(payment_summary__isnull=True, total_q=0)
    return qs.filter(condition)


MONEY = {"type": "integer", "minimum": 0}
EXTENSION = OrderExtension(
    name="payments",
    related=("payment_summary",),
    fields=order_fields,
    field_schemas={
        "payment_status": {"type": "string", "enum": list(PaymentStatus.values)},
        "amount_paid_q": {**MONEY, "description": "Captured amounts, tips apart."},
        "amount_refunded_q": {**MONEY, "description": "Done refunds."},
        "amount_due_q": {**MONEY, "description": "total_q − amount_paid_q + amount_refunded_q, never below 0."},
        "tip_q": {**MONEY, "description": "Captured tips."},
    },
    filters={"payment_status": OrderFilter(
        filter_payment_status, {"type": "string", "enum": list(PaymentStatus.values)},
        "Filter by payment status (omniman.contrib.payments).",
    )},
    guard=require_paid,
    config_keys={
        "payment_directives": (_topics, "a list of directive topics"),
        "require_paid_for": (_topics, "a list of statuses"),
    },
    config_topic_keys=("payment_directives",),
    api_urls="omniman.contrib.payments.urls" if apps.is_installed("omniman_api") else None,
)
