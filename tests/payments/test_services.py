"""Payments and refunds through the services: amounts, change, tips, pending card
payments settled by their directive, refunds by amount and by lines, the guard."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from omniman.contrib.payments.exceptions import Overpayment, PaymentRequired, RefundExceedsPaid
from omniman.contrib.payments.handlers import settle
from omniman.contrib.payments.models import Payment, PaymentSummary, Refund
from omniman.contrib.payments.providers import Settlement
from omniman.contrib.payments.services import refund_order, settle_payment, take_payment, totals_of
from omniman.exceptions import IdempotencyKeyReused, NotFound, TransitionNotAllowed, ValidationError
from omniman.models import Directive, Order, OrderEvent
from omniman.registry import HandlerContext, registry
from omniman.services import transition_order
from omniman.testing import add_line_op

from .conftest import committed_order

pytestmark = pytest.mark.django_db


def pay(ref: str, amount_q: int, method: str = "cash", **kw):
    outcome = take_payment(ref=ref, method=method, amount_q=amount_q, **kw)
    assert outcome.result is not None
    return outcome.result


def totals(ref: str):
    return totals_of(Order.objects.get(ref=ref))


def run_settle(directive: Directive) -> None:
    import logging

    settle(directive, HandlerContext(directive.pk, 1, directive.max_attempts, directive.topic, logging.getLogger("t")))


def test_an_order_without_payments_is_unpaid(order):
    t = totals(order)
    assert (t.status, t.paid_q, t.due_q, t.tip_q) == ("unpaid", 0, 1750, 0)
    assert not PaymentSummary.objects.exists()


def test_cash_with_change_and_a_tip(order):
    p = pay(order, 1750, tip_q=200, tendered_q=2000)
    assert (p.status, p.amount_q, p.tip_q, p.tendered_q, p.change_q) == ("captured", 1750, 200, 2000, 50)
    t = totals(order)
    assert (t.status, t.paid_q, t.due_q, t.tip_q) == ("paid", 1750, 0, 200)
    o = Order.objects.get(ref=order)
    assert o.version == 1  # the ETag moved on
    [event] = OrderEvent.objects.filter(order=o, type__startswith="payment.")
    assert event.type == "payment.captured"
    assert event.payload == {"payment_id": p.pk, "method": "cash", "amount_q": 1750, "tip_q": 200,
                             "tendered_q": 2000, "change_q": 50}


def test_a_split_payment_goes_through_partially_paid(order):
    pay(order, 1000)
    assert (totals(order).status, totals(order).due_q) == ("partially_paid", 750)
    pay(order, 750)
    assert (totals(order).status, totals(order).due_q) == ("paid", 0)


def test_overpayment_is_refused_and_changes_nothing(order):
    pay(order, 1000)
    with pytest.raises(Overpayment) as caught:
        pay(order, 751)
    assert caught.value.amount_due_q == 750
    assert Payment.objects.count() == 1 and totals(order).paid_q == 1000


def test_a_tip_does_not_count_against_what_is_due(order):
    pay(order, 1750, tip_q=5000)
    assert totals(order).due_q == 0


@pytest.mark.parametrize(("kwargs", "pointer", "code"), [
    ({"method": "bitcoin"}, "/method", "unknown_method"),
    ({"amount_q": -1}, "/amount_q", "min_value"),
    ({"amount_q": 500.0}, "/amount_q", "invalid_type"),
    ({"amount_q": True}, "/amount_q", "invalid_type"),
    ({"amount_q": 0}, "/amount_q", "min_value"),
    ({"tip_q": -5}, "/tip_q", "min_value"),
    ({"tendered_q": 400}, "/tendered_q", "below_amount"),
    ({"tendered_q": 600, "tip_q": 200}, "/tendered_q", "below_amount"),
    ({"method": "card", "tendered_q": 600}, "/tendered_q", "not_allowed"),
    ({"reference": "x" * 129}, "/reference", "invalid"),
])
def test_bad_input_is_a_validation_error_at_its_pointer(order, kwargs, pointer, code):
    args = {"method": "cash", "amount_q": 500, **kwargs}
    with pytest.raises(ValidationError) as caught:
        take_payment(ref=order, **args)
    assert [(e.pointer, e.code) for e in caught.value.errors] == [(pointer, code)]
    assert not Payment.objects.exists()


def test_an_unknown_order_is_not_found(pos):
    with pytest.raises(NotFound):
        take_payment(ref="POS-NOPE", method="cash", amount_q=1)


def test_a_card_payment_waits_pending_until_its_directive_captures_it(order):
    p = pay(order, 1750, method="card")
    assert p.status == "pending"
    t = totals(order)
    assert (t.status, t.due_q, t.pending_q) == ("unpaid", 1750, 1750)  # pending does not reduce what is due
    with pytest.raises(Overpayment):  # ... but it is held: no second payment of the same money
        pay(order, 1)
    [directive] = Directive.objects.filter(topic="payments.settle")
    assert directive.payload == {"order_ref": order, "channel_code": "pos", "payment_id": p.pk}
    run_settle(directive)
    p.refresh_from_db()
    assert (p.status, p.provider_ref) == ("captured", f"demo-omniman-directive-{directive.pk}")
    assert (totals(order).status, totals(order).due_q) == ("paid", 0)
    run_settle(directive)  # at-least-once: a second run changes nothing
    assert list(OrderEvent.objects.filter(order__ref=order, type__startswith="payment.")
                .values_list("type", flat=True)) == ["payment.pending", "payment.captured"]


def test_a_declined_card_fails_and_frees_what_it_held(pos):
    ref = committed_order("pos", [add_line_op(unit_price_q=200_000)])
    p = pay(ref, 200_000, method="card")  # above the demo terminal's decline_above_q
    run_settle(Directive.objects.get(topic="payments.settle"))
    p.refresh_from_db()
    assert (p.status, p.failure) == ("failed", "declined by the terminal")
    t = totals(ref)
    assert (t.status, t.pending_q, t.due_q) == ("unpaid", 0, 200_000)
    assert pay(ref, 200_000).status == "captured"


def test_settling_a_payment_that_is_not_pending_changes_nothing(order):
    p = pay(order, 500)
    assert settle_payment(ref=order, payment_id=p.pk, settlement=Settlement(False)).status == "captured"
    with pytest.raises(NotFound):
        settle_payment(ref=order, payment_id=p.pk + 99, settlement=Settlement(True))


def test_a_replayed_key_never_pays_twice(order):
    first = take_payment(ref=order, method="cash", amount_q=500, idempotency_key="PAY-1")
    again = take_payment(ref=order, method="cash", amount_q=500, idempotency_key="PAY-1")
    assert first.result is not None and again.replayed
    assert again.replay.body == {"id": first.result.pk}
    assert Payment.objects.count() == 1
    with pytest.raises(IdempotencyKeyReused):
        take_payment(ref=order, method="cash", amount_q=600, idempotency_key="PAY-1")


def test_payment_directives_are_enqueued_for_each_payment_and_refund(paid_pos):
    ref = committed_order("pos")
    p = pay(ref, 500)
    r = refund_order(ref=ref, amount_q=100, reason="cold").result
    rows = list(Directive.objects.filter(topic="receipt.print").order_by("pk").values_list("payload", flat=True))
    assert rows == [{"order_ref": ref, "channel_code": "pos", "payment_id": p.pk},
                    {"order_ref": ref, "channel_code": "pos", "refund_id": r.pk}]


# -- refunds ---------------------------------------------------------------------------


def test_a_cash_refund_is_done_at_once(order):
    p = pay(order, 1750)
    r = refund_order(ref=order, amount_q=500, reason="spilled").result
    assert (r.status, r.payment_id, r.amount_q, r.lines) == ("done", p.pk, 500, [])
    t = totals(order)
    assert (t.status, t.refunded_q, t.due_q) == ("partially_refunded", 500, 500)
    refund_order(ref=order, amount_q=1250, reason="all of it")
    assert (totals(order).status, totals(order).due_q) == ("refunded", 1750)


def test_a_refund_never_exceeds_what_was_captured_and_not_refunded(order):
    pay(order, 1000)
    with pytest.raises(RefundExceedsPaid) as caught:
        refund_order(ref=order, amount_q=1001, reason="x")
    assert caught.value.refundable_q == 1000
    refund_order(ref=order, amount_q=600, reason="x")
    with pytest.raises(RefundExceedsPaid):
        refund_order(ref=order, amount_q=401, reason="x")
    assert Refund.objects.count() == 1


def test_an_unpaid_order_refunds_nothing(order):
    with pytest.raises(RefundExceedsPaid):
        refund_order(ref=order, amount_q=1, reason="x")


def test_a_refund_by_lines_gives_back_the_lines_share(order):
    pay(order, 1750)
    r = refund_order(ref=order, lines=[{"line_id": "L1", "qty": 1}], reason="one coffee back").result
    assert (r.amount_q, r.lines) == (500, [{"line_id": "L1", "qty": "1"}])
    with pytest.raises(ValidationError) as caught:  # 1 of 2 coffees is left
        refund_order(ref=order, lines=[{"line_id": "L2", "qty": 1}, {"line_id": "L1", "qty": "1.5"}], reason="x")
    assert [(e.pointer, e.code) for e in caught.value.errors] == [("/lines/1/qty", "max_qty_left")]
    r = refund_order(ref=order, lines=[{"line_id": "L1", "qty": 1}], amount_q=1, reason="token").result
    assert r.amount_q == 1  # with amount_q, that amount


def test_a_line_share_is_rounded_half_even(pos):
    ref = committed_order("pos", [add_line_op("TEA", qty=3, unit_price_q=333, line_id="T")])  # 999
    pay(ref, 999)
    amounts = [refund_order(ref=ref, lines=[{"line_id": "T", "qty": "0.5"}], reason="x").result.amount_q
               for _ in range(2)]
    assert amounts == [166, 166]  # 999 × 0.5 ÷ 3 = 166.5 → 166


@pytest.mark.parametrize(("kwargs", "pointer", "code"), [
    ({"reason": ""}, "/reason", "invalid"),
    ({"reason": None}, "/reason", "invalid_type"),
    ({"amount_q": None}, "/amount_q", "required"),
    ({"amount_q": 0}, "/amount_q", "min_value"),
    ({"amount_q": None, "lines": []}, "/lines", "invalid"),
    ({"amount_q": None, "lines": [{"line_id": "NOPE", "qty": 1}]}, "/lines/0/line_id", "unknown_line"),
    ({"amount_q": None, "lines": [{"line_id": "L1", "qty": 0}]}, "/lines/0/qty", "min_value"),
    ({"amount_q": None, "lines": [{"line_id": "L1"}]}, "/lines/0/qty", "required"),
    ({"amount_q": None, "lines": [{"line_id": "L1", "qty": 1, "x": 1}]}, "/lines/0/x", "unknown_field"),
    ({"payment_id": 10**9}, "/payment_id", "unknown_payment"),
    ({"payment_id": "1"}, "/payment_id", "invalid_type"),
])
def test_bad_refunds_are_validation_errors_at_their_pointer(order, kwargs, pointer, code):
    pay(order, 1750)
    args = {"reason": "r", "amount_q": 100, **kwargs}
    with pytest.raises(ValidationError) as caught:
        refund_order(ref=order, **args)
    assert [(e.pointer, e.code) for e in caught.value.errors] == [(pointer, code)]
    assert not Refund.objects.exists()


def test_a_refund_names_its_payment_or_takes_the_newest_that_covers_it(order):
    cash = pay(order, 1000)
    card = pay(order, 750, method="card")
    run_settle(Directive.objects.get(topic="payments.settle"))
    r = refund_order(ref=order, amount_q=800, reason="x").result
    assert r.payment_id == cash.pk  # the card payment has only 750
    with pytest.raises(RefundExceedsPaid):
        refund_order(ref=order, amount_q=201, reason="x", payment_id=cash.pk)
    with pytest.raises(ValidationError) as caught:  # 200 + 750 left, but not on one payment
        refund_order(ref=order, amount_q=900, reason="x")
    assert caught.value.errors[0].code == "split_required"
    r = refund_order(ref=order, amount_q=750, reason="x", payment_id=card.pk).result
    assert r.status == "pending"  # the terminal refunds later
    assert totals(order).refunded_q == 800
    with pytest.raises(RefundExceedsPaid):  # the pending refund holds its amount
        refund_order(ref=order, amount_q=201, reason="x")
    run_settle(Directive.objects.filter(topic="payments.settle").latest("pk"))
    r.refresh_from_db()
    assert r.status == "done" and totals(order).refunded_q == 1550


def test_require_paid_for_refuses_the_status_until_paid(paid_pos):
    ref = committed_order("pos")
    for to in ("preparing", "ready"):
        transition_order(ref=ref, to=to)
    with pytest.raises(PaymentRequired) as caught:
        transition_order(ref=ref, to="completed")
    assert caught.value.amount_due_q == 500
    assert Order.objects.get(ref=ref).status == "ready"
    pay(ref, 500)
    assert transition_order(ref=ref, to="completed").status == "completed"


def test_the_flow_is_checked_before_payment(paid_pos):
    ref = committed_order("pos")
    with pytest.raises(TransitionNotAllowed):
        transition_order(ref=ref, to="completed")


def test_the_database_refuses_an_overpaid_summary(order):
    pay(order, 1750)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentSummary.objects.filter(order__ref=order).update(paid_q=1751)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentSummary.objects.filter(order__ref=order).update(refunded_q=1751)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(order__ref=order).update(amount_q=-1)


def test_the_settle_handler_is_registered():
    assert registry.get_handler("payments.settle") is settle


def test_an_extension_name_or_key_is_registered_once():
    from omniman import extensions
    from omniman.contrib.payments.extension import EXTENSION
    from omniman.extensions import OrderExtension

    assert extensions.register(EXTENSION) is EXTENSION  # again, the same: nothing happens
    with pytest.raises(ValueError, match="already registered"):
        extensions.register(OrderExtension(name="payments"))
    with pytest.raises(ValueError, match="clashes"):
        extensions.register(OrderExtension(name="other", config_keys={"require_paid_for": (bool, "x")}))
    assert [e.name for e in extensions.extensions()] == ["payments"]


def test_a_channel_config_takes_the_extensions_keys_checked(db):
    from django.core.exceptions import ValidationError as DjangoValidationError

    from omniman.testing import make_channel

    channel = make_channel("pos", require_paid_for=["completed"], payment_directives=["receipt.print"])
    assert channel.conf.extra == {"require_paid_for": ["completed"], "payment_directives": ["receipt.print"]}
    with pytest.raises(DjangoValidationError, match="'require_paid_for' must be a list of statuses"):
        make_channel("pos", require_paid_for="completed")
