"""Races on PostgreSQL: real threads on their own connections, the order's row lock."""

from __future__ import annotations

import pytest

from omniman.contrib.payments.exceptions import Overpayment, RefundExceedsPaid
from omniman.contrib.payments.models import Payment, PaymentSummary, Refund
from omniman.contrib.payments.services import refund_order, take_payment
from tests.services.test_concurrency import race

from .conftest import committed_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_16_payments_of_the_full_amount_capture_exactly_one(pos):
    ref = committed_order("pos")
    results = race(16, lambda i: take_payment(ref=ref, method="cash", amount_q=500).result)
    wins = [r for r in results if isinstance(r, Payment)]
    losses = [r for r in results if not isinstance(r, Payment)]
    assert len(wins) == 1 and wins[0].status == "captured"
    assert len(losses) == 15 and all(isinstance(e, Overpayment) for e in losses), losses
    assert Payment.objects.count() == 1
    assert PaymentSummary.objects.get().paid_q == 500


def test_16_pending_card_payments_hold_the_amount_once(pos):
    ref = committed_order("pos")
    results = race(16, lambda i: take_payment(ref=ref, method="card", amount_q=500).result)
    assert sum(isinstance(r, Payment) for r in results) == 1
    assert sum(isinstance(r, Overpayment) for r in results) == 15


def test_16_refunds_of_the_full_amount_make_one(pos):
    ref = committed_order("pos")
    take_payment(ref=ref, method="cash", amount_q=500)
    results = race(16, lambda i: refund_order(ref=ref, amount_q=500, reason=f"r{i}").result)
    assert sum(isinstance(r, Refund) for r in results) == 1
    assert sum(isinstance(r, RefundExceedsPaid) for r in results) == 15, results
    assert PaymentSummary.objects.get().refunded_q == 500


def test_16_payments_with_one_key_pay_once_and_all_get_the_answer(pos):
    ref = committed_order("pos")
    results = race(16, lambda i: take_payment(ref=ref, method="cash", amount_q=200, idempotency_key="K"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(not r.replayed for r in results) == 1
    assert Payment.objects.count() == 1
