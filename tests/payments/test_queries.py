"""Exact statement counts: a payment and a refund cost a fixed number of statements,
the order's reads add none (the summary is a join), and the kernel's transition costs
what it cost before unless the channel asks ``require_paid_for`` of the target status."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman import extensions
from omniman.services import transition_order
from tests.api.conftest import data
from tests.api.test_queries import count, statements

from .conftest import committed_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def without_payments():
    """The kernel as it is without the app's extension (its tables stay, unused)."""
    ext = extensions.unregister("payments")
    yield
    extensions.register(ext)


def test_a_cash_payment_is_a_fixed_number_of_statements(api, pos):
    ref = committed_order("pos")
    sqls = statements(lambda: api.post_json(f"/api/orders/{ref}/payments/",
                                            {"method": "cash", "amount_q": 200, "idempotency_key": "P-1"}))
    # token and user (one join), BEGIN, lock the order (with its channel, the grant and
    # the summary), key lookup, summary read under the lock, INSERT payment, INSERT
    # summary, UPDATE order version, INSERT event, INSERT key, COMMIT.
    assert len(sqls) == 11, sqls
    if connection.vendor == "postgresql":  # the order row only: never the channel's, nor the summary's
        assert sqls[2].endswith('FOR UPDATE OF "omniman_order"'), sqls[2]
    # The second payment updates the summary it finds; no key, no lookup and no record.
    assert count(lambda: api.post_json(f"/api/orders/{ref}/payments/", {"method": "cash", "amount_q": 100})) == 9


def test_a_card_payment_adds_one_insert_for_its_directive(api, pos):
    ref = committed_order("pos")
    n = count(lambda: api.post_json(f"/api/orders/{ref}/payments/", {"method": "card", "amount_q": 200}))
    assert n == 10  # as cash without a key, plus the payments.settle directive


def test_a_refund_is_a_fixed_number_of_statements(api, pos):
    ref = committed_order("pos")
    api.post_json(f"/api/orders/{ref}/payments/", {"method": "cash", "amount_q": 500})
    # token + user, BEGIN, lock, summary, payments with their refunds, INSERT refund,
    # UPDATE summary, UPDATE order, INSERT event, COMMIT.
    assert count(lambda: api.post_json(f"/api/orders/{ref}/refunds/", {"amount_q": 100, "reason": "r"})) == 10
    # By lines: the items and earlier refunds of the order, two more.
    body = {"lines": [{"line_id": "L1", "qty": "0.5"}], "reason": "r"}
    assert count(lambda: api.post_json(f"/api/orders/{ref}/refunds/", body)) == 12


def test_reading_orders_costs_nothing_more(api, pos):
    ref = committed_order("pos")
    api.post_json(f"/api/orders/{ref}/payments/", {"method": "cash", "amount_q": 100})
    committed_order("pos")
    # token + user, the order (with its channel and summary), its items.
    assert count(lambda: api.get(f"/api/orders/{ref}/")) == 3
    # token + user, the page (with channels and summaries), the items of the page.
    assert count(lambda: api.get("/api/orders/")) == 3
    assert count(lambda: api.get("/api/orders/?payment_status=partially_paid")) == 3
    assert [o["ref"] for o in data(api.get("/api/orders/?payment_status=partially_paid"))["results"]] == [ref]
    # token + user, the order, its payments, its refunds.
    assert count(lambda: api.get(f"/api/orders/{ref}/payments/")) == 4


def test_transition_costs_what_it_did_unless_payment_is_required(api, pos):
    ref = committed_order("pos")
    # token + user, BEGIN, lock (with the channel, the grant and the summary), UPDATE, event, COMMIT.
    assert count(lambda: api.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"})) == 6
    pos.config = {**pos.config, "require_paid_for": ["ready"]}
    pos.save()
    api.post_json(f"/api/orders/{ref}/payments/", {"method": "cash", "amount_q": 500})
    # ... and one more, the summary read under the lock, when the target status requires payment.
    assert count(lambda: api.post_json(f"/api/orders/{ref}/transition/", {"to": "ready"})) == 7
    with CaptureQueriesContext(connection) as ctx:
        transition_order(ref=ref, to="completed")
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert len([s for s in sqls if "paymentsummary" in s]) == 1  # the join (completed requires nothing)


def test_without_the_extension_the_kernel_is_unchanged(api, pos, without_payments):
    ref = committed_order("pos")
    with CaptureQueriesContext(connection) as ctx:
        transition_order(ref=ref, to="preparing")
    assert "payment" not in " ".join(q["sql"] for q in ctx.captured_queries)
    assert count(lambda: api.post_json(f"/api/orders/{ref}/transition/", {"to": "ready"})) == 6
    body = data(api.get(f"/api/orders/{ref}/"))
    assert "payment_status" not in body
