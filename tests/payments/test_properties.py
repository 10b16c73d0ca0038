"""Hypothesis: any sequence of payments, settlements and refunds keeps the summary
equal to the ledger's sums, ``amount_due_q`` and ``payment_status`` consistent, and
nothing below zero. Each example runs on its own order, inside a savepoint that is
rolled back, so no state leaks between examples or into other tests."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniman.contrib.payments.exceptions import Overpayment, RefundExceedsPaid
from omniman.contrib.payments.handlers import settle
from omniman.contrib.payments.models import Payment, PaymentSummary, Refund
from omniman.contrib.payments.services import refund_order, take_payment, totals_of
from omniman.exceptions import ValidationError
from omniman.models import Directive, Order
from omniman.registry import HandlerContext

from .conftest import committed_order

pytestmark = pytest.mark.django_db

step = st.one_of(
    st.tuples(st.just("cash"), st.integers(0, 1200), st.integers(0, 300)),
    st.tuples(st.just("card"), st.integers(0, 1200), st.integers(0, 300)),
    st.tuples(st.just("settle"), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("refund"), st.integers(1, 1200), st.just(0)),
)


class Rollback(Exception):
    pass


def _settle_one(ref: str, index: int) -> None:
    pending = list(Directive.objects.filter(topic="payments.settle", payload__order_ref=ref, status="queued"))
    if pending:
        directive = pending[index % len(pending)]
        settle(directive, HandlerContext(directive.pk, 1, 1, directive.topic, logging.getLogger("t")))
        Directive.objects.filter(pk=directive.pk).update(status="done")


def _check(ref: str) -> None:
    order = Order.objects.get(ref=ref)
    summary = PaymentSummary.objects.filter(order=order).first()
    t = totals_of(order, summary)

    def total(qs, field="amount_q"):
        return qs.aggregate(s=Sum(field))["s"] or 0

    payments = Payment.objects.filter(order=order)
    refunds = Refund.objects.filter(order=order)
    assert t.paid_q == total(payments.filter(status="captured"))
    assert t.tip_q == total(payments.filter(status="captured"), "tip_q")
    assert t.pending_q == total(payments.filter(status="pending"))
    assert t.refunded_q == total(refunds.filter(status="done"))
    assert t.refund_pending_q == total(refunds.filter(status="pending"))
    assert 0 <= t.refunded_q + t.refund_pending_q <= t.paid_q
    assert t.paid_q - t.refunded_q + t.pending_q <= order.total_q
    assert t.due_q == max(0, order.total_q - t.paid_q + t.refunded_q) >= 0
    expected = ("refunded" if t.refunded_q >= t.paid_q else "partially_refunded") if t.refunded_q else (
        "paid" if t.paid_q >= order.total_q else "partially_paid" if t.paid_q else "unpaid")
    assert t.status == expected
    if summary is not None:
        assert summary.status == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=12))
def test_any_sequence_keeps_the_sums_consistent(pos, steps):
    try:
        with transaction.atomic():
            ref = committed_order("pos", [{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 1500}])
            for kind, amount, tip in steps:
                try:
                    if kind in ("cash", "card"):
                        take_payment(ref=ref, method=kind, amount_q=amount, tip_q=tip)
                    elif kind == "settle":
                        _settle_one(ref, amount)
                    else:
                        refund_order(ref=ref, amount_q=amount, reason="r")
                except (Overpayment, RefundExceedsPaid, ValidationError):
                    pass
                _check(ref)
            raise Rollback
    except Rollback:
        pass
