"""The OpenAPI description of the payments routes: the answers' shapes (serializers,
for the document only) and the exact rules of the request bodies, which
``omniman_api.schema`` puts in the document (:attr:`OrderExtension.api_schemas`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers as rf

from omniman.money import MAX_UNIT_PRICE_Q
from omniman_api.schema import (
    IDEMPOTENCY_KEY,
    MAX_SAFE,
    NO_NUL,
    REPLAYED,
    Shape,
    _qty,
    extend_schema,
)

AMOUNT = {"type": "integer", "minimum": 0, "maximum": MAX_UNIT_PRICE_Q}
KEY_BODY = r"^[\x20-\x7e]{1,255}$"
IDENT = r"^[A-Za-z0-9._:-]{1,64}$"


class PaymentOut(Shape):
    id = rf.IntegerField()
    method = rf.CharField()
    amount_q = rf.IntegerField()
    tip_q = rf.IntegerField()
    tendered_q = rf.IntegerField(allow_null=True)
    change_q = rf.IntegerField()
    status = rf.ChoiceField(choices=["pending", "captured", "failed"])
    provider_ref = rf.CharField(allow_blank=True)
    reference = rf.CharField(allow_blank=True)
    failure = rf.CharField(allow_blank=True)
    created_at = rf.DateTimeField()


class RefundLine(Shape):
    line_id = rf.CharField()
    qty = rf.CharField()


class RefundOut(Shape):
    id = rf.IntegerField()
    payment_id = rf.IntegerField()
    amount_q = rf.IntegerField()
    lines = RefundLine(many=True)
    reason = rf.CharField()
    status = rf.ChoiceField(choices=["pending", "done", "failed"])
    provider_ref = rf.CharField(allow_blank=True)
    failure = rf.CharField(allow_blank=True)
    created_at = rf.DateTimeField()


class LedgerOut(Shape):
    payments = PaymentOut(many=True)
    refunds = RefundOut(many=True)


class PaymentIn(Shape):
    method = rf.CharField()
    amount_q = rf.IntegerField()


class RefundIn(Shape):
    reason = rf.CharField()


payment_list = extend_schema(
    summary="An order's payments and refunds",
    description="Oldest first. An unknown order, or one of a channel the caller cannot see, is 404.",
    responses=LedgerOut, tags=["payments"],
)
payment_create = extend_schema(
    summary="Take a payment",
    description="201 with the payment. Accepts an idempotency key. ``tip_q`` is apart from ``amount_q``; "
    "``tendered_q`` (cash) gives ``change_q``. A provider that settles later (a card terminal) answers "
    "``pending``, and a directive captures or fails it. Refused for the channel or the stored state only: an "
    "unknown order (404), a ``method`` not configured (400 at ``/method``), ``tendered_q`` for a method that "
    "does not take it (400 at ``/tendered_q``), an amount above what is due less pending payments (409 "
    "``overpayment``); and one rule JSON Schema cannot state: ``tendered_q`` below ``amount_q`` + "
    "``tip_q`` is 400 at ``/tendered_q``.",
    request=PaymentIn, parameters=[IDEMPOTENCY_KEY, REPLAYED], responses={201: PaymentOut}, tags=["payments"],
)
refund_create = extend_schema(
    summary="Refund",
    description="201 with the refund. Accepts an idempotency key. By ``lines`` without ``amount_q``: per line, "
    "round-half-even(line_total_q × qty ÷ the line's qty); a line named twice refunds the sum of its "
    "quantities. Refused for the channel or the stored state only: "
    "an unknown order (404), more than is captured and not yet refunded (409 ``refund_exceeds_paid``), a line "
    "the order does not have or refunded above what is left of it (400 at ``/lines/N/...``), a "
    "``payment_id`` that is not a captured payment of the order, or no single payment that covers the amount "
    "(400 at ``/payment_id``), lines whose total is 0 (400 at ``/lines``).",
    request=RefundIn, parameters=[IDEMPOTENCY_KEY, REPLAYED], responses={201: RefundOut}, tags=["payments"],
)


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False, "required": required}


REQUEST_SCHEMAS: dict[str, Any] = {
    "PaymentInRequest": _object({
        "method": {"type": "string", "pattern": IDENT, "description": "A method of OMNIMAN_PAYMENTS['METHODS']."},
        "amount_q": {**AMOUNT, "description": "Minor units, tips apart."},
        "tip_q": AMOUNT,
        "tendered_q": {**AMOUNT, "description": "Cash handed over (methods that take it)."},
        "reference": {"type": "string", "pattern": NO_NUL, "maxLength": 128},
        "idempotency_key": {"type": "string", "pattern": KEY_BODY},
    }, ["method", "amount_q"]) | {"anyOf": [
        {"properties": {"amount_q": {"minimum": 1}}},
        {"required": ["tip_q"], "properties": {"tip_q": {"minimum": 1}}},
    ], "description": "amount_q and tip_q are not both 0."},
    "RefundInRequest": _object({
        "reason": {"type": "string", "pattern": NO_NUL, "minLength": 1, "maxLength": 500},
        "amount_q": {**AMOUNT, "minimum": 1},
        "lines": {"type": "array", "minItems": 1, "maxItems": 500, "items": _object({
            "line_id": {"type": "string", "pattern": IDENT},
            "qty": _qty(zero=False),
        }, ["line_id", "qty"])},
        "payment_id": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE},
        "idempotency_key": {"type": "string", "pattern": KEY_BODY},
    }, ["reason"]) | {"anyOf": [{"required": ["amount_q"]}, {"required": ["lines"]}],
                      "description": "amount_q, lines, or both."},
}
