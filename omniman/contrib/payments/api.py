"""The payments routes of the HTTP API (mounted by ``omniman_api.urls`` through the
order extension): thin views over :mod:`omniman.contrib.payments.services`."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.request import Request
from rest_framework.response import Response

from omniman.contrib.payments import schema as docs
from omniman.contrib.payments.models import Payment, Refund
from omniman.contrib.payments.services import refund_order, take_payment
from omniman.exceptions import NotFound
from omniman.models import Order
from omniman.services.idempotency import Replay
from omniman_api import serializers as s
from omniman_api.idempotency import outcome_response, request_fingerprint, request_key
from omniman_api.renderers import dumps
from omniman_api.views import OmnimanView


def payment_json(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "method": payment.method,
        "amount_q": payment.amount_q,
        "tip_q": payment.tip_q,
        "tendered_q": payment.tendered_q,
        "change_q": payment.change_q,
        "status": payment.status,
        "provider_ref": payment.provider_ref,
        "reference": payment.reference,
        "failure": payment.failure,
        "created_at": payment.created_at,
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.pk,
        "payment_id": refund.payment_id,
        "amount_q": refund.amount_q,
        "lines": refund.lines,
        "reason": refund.reason,
        "status": refund.status,
        "provider_ref": refund.provider_ref,
        "failure": refund.failure,
        "created_at": refund.created_at,
    }


def _created(row: Any, render: Any) -> Replay:
    return Replay(201, orjson.loads(dumps(render(row))), {})


class OrderPaymentsView(OmnimanView):
    @docs.payment_list
    def get(self, request: Request, ref: str) -> Response:
        order = self.access.scope(Order.objects.only("pk")).filter(ref=ref).first()
        if order is None:
            raise NotFound("No such order.")
        return Response({
            "payments": [payment_json(p) for p in Payment.objects.filter(order_id=order.pk).order_by("id")],
            "refunds": [refund_json(r) for r in Refund.objects.filter(order_id=order.pk).order_by("id")],
        })

    @docs.payment_create
    def post(self, request: Request, ref: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["method", "amount_q"],
                       optional=["tip_q", "tendered_q", "reference", "idempotency_key"])
        key = request_key(request, body)
        outcome = take_payment(
            ref=ref, method=body["method"], amount_q=body["amount_q"], tip_q=body.get("tip_q"),
            tendered_q=body.get("tendered_q"), reference=body.get("reference"),
            channel=self.access.any_granted(), actor=self.actor(),
            idempotency_key=key, fingerprint=request_fingerprint(request, body) if key else None,
            answer=lambda p: _created(p, payment_json),
        )
        if key is None:
            assert outcome.result is not None
            return Response(payment_json(outcome.result), status=201)
        return outcome_response(outcome)


class OrderRefundsView(OmnimanView):
    @docs.refund_create
    def post(self, request: Request, ref: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["reason"],
                       optional=["amount_q", "lines", "payment_id", "idempotency_key"])
        key = request_key(request, body)
        outcome = refund_order(
            ref=ref, reason=body["reason"], amount_q=body.get("amount_q"), lines=body.get("lines"),
            payment_id=body.get("payment_id"), channel=self.access.any_granted(), actor=self.actor(),
            idempotency_key=key, fingerprint=request_fingerprint(request, body) if key else None,
            answer=lambda r: _created(r, refund_json),
        )
        if key is None:
            assert outcome.result is not None
            return Response(refund_json(outcome.result), status=201)
        return outcome_response(outcome)
