"""The ``payments.settle`` directive: ask the provider, outside the order's lock, then
record the outcome under it. Idempotent: a payment or refund no longer pending is
left alone, and the provider gets ``ctx.idempotency_key`` (the same on every attempt)."""

from __future__ import annotations

from typing import Any

from omniman.contrib.payments.models import Payment, Refund
from omniman.contrib.payments.providers import providers
from omniman.contrib.payments.services import settle_payment, settle_refund
from omniman.exceptions import PermanentFailure
from omniman.registry import HandlerContext


def settle(directive: Any, ctx: HandlerContext) -> None:
    payload = directive.payload
    ref = payload["order_ref"]
    if "payment_id" in payload:
        payment = Payment.objects.filter(pk=payload["payment_id"]).first()
        if payment is None:
            raise PermanentFailure(f"payment {payload['payment_id']} does not exist")
        if payment.status != Payment.Status.PENDING:
            return
        provider = _provider(payment.method)
        settle_payment(ref=ref, payment_id=payment.pk, settlement=provider.capture(payment, ctx), actor=ctx.topic)
        return
    refund = Refund.objects.select_related("payment").filter(pk=payload.get("refund_id")).first()
    if refund is None:
        raise PermanentFailure(f"refund {payload.get('refund_id')} does not exist")
    if refund.status != Refund.Status.PENDING:
        return
    provider = _provider(refund.payment.method)
    settle_refund(ref=ref, refund_id=refund.pk, settlement=provider.refund(refund, refund.payment, ctx),
                  actor=ctx.topic)


def _provider(method: str) -> Any:
    provider = providers().get(method)
    if provider is None:
        raise PermanentFailure(f"payment method {method!r} is not configured")
    return provider
