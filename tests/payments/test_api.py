"""The payments routes over HTTP: bodies, problem+json errors, idempotency keys, the
order's new fields, its ETag, the payment_status filter, access."""

from __future__ import annotations

import pytest

from omniman.contrib.payments.models import Payment, Refund
from tests.api.conftest import client_for, data, make_user, problem

from .conftest import committed_order

pytestmark = pytest.mark.django_db


def pay(api, ref, body, **extra):
    return api.post_json(f"/api/orders/{ref}/payments/", body, **extra)


def test_cash_with_change_over_http(api, order):
    response = pay(api, order, {"method": "cash", "amount_q": 1750, "tendered_q": 2000, "tip_q": 100})
    assert response.status_code == 201, response.content
    body = data(response)
    assert {k: body[k] for k in ("method", "amount_q", "tip_q", "tendered_q", "change_q", "status")} == {
        "method": "cash", "amount_q": 1750, "tip_q": 100, "tendered_q": 2000, "change_q": 150, "status": "captured"}
    assert set(body) == {"id", "method", "amount_q", "tip_q", "tendered_q", "change_q", "status", "provider_ref",
                         "reference", "failure", "created_at"}
    o = data(api.get(f"/api/orders/{order}/"))
    assert {k: o[k] for k in ("payment_status", "amount_paid_q", "amount_refunded_q", "amount_due_q", "tip_q")} == {
        "payment_status": "paid", "amount_paid_q": 1750, "amount_refunded_q": 0, "amount_due_q": 0, "tip_q": 100}


def test_the_order_json_of_an_unpaid_order(api, order):
    o = data(api.get(f"/api/orders/{order}/"))
    assert (o["payment_status"], o["amount_due_q"], o["amount_paid_q"]) == ("unpaid", 1750, 0)


def test_a_payment_changes_the_orders_etag(api, order):
    before = api.get(f"/api/orders/{order}/")["ETag"]
    pay(api, order, {"method": "cash", "amount_q": 100})
    after = api.get(f"/api/orders/{order}/")
    assert after["ETag"] != before
    assert api.get(f"/api/orders/{order}/", HTTP_IF_NONE_MATCH=before).status_code == 200
    stale = api.post_json(f"/api/orders/{order}/transition/", {"to": "preparing"}, HTTP_IF_MATCH=before)
    problem(stale, 412, "precondition_failed")


def test_overpayment_is_409(api, order):
    pay(api, order, {"method": "cash", "amount_q": 1000})
    body = problem(pay(api, order, {"method": "cash", "amount_q": 1000}), 409, "overpayment")
    assert body["amount_due_q"] == 750


@pytest.mark.parametrize(("body", "pointer", "code"), [
    ({"method": "cash"}, "/amount_q", "required"),
    ({"amount_q": 1}, "/method", "required"),
    ({"method": "cash", "amount_q": 1, "extra": 1}, "/extra", "unknown_field"),
    ({"method": "cash", "amount_q": "100"}, "/amount_q", "invalid_type"),
    ({"method": "gold", "amount_q": 100}, "/method", "unknown_method"),
    ({"method": "cash", "amount_q": 100, "tendered_q": 50}, "/tendered_q", "below_amount"),
])
def test_bad_payments_point_at_the_field(api, order, body, pointer, code):
    errors = problem(pay(api, order, body), 400, "validation_error")["errors"]
    assert [(e["pointer"], e["code"]) for e in errors] == [(pointer, code)]
    assert not Payment.objects.exists()


def test_a_keyed_payment_is_replayed_not_paid_twice(api, order):
    body = {"method": "cash", "amount_q": 500, "idempotency_key": "P-1"}
    first = pay(api, order, body)
    again = pay(api, order, body)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Payment.objects.count() == 1
    header = pay(api, order, {"method": "cash", "amount_q": 500}, HTTP_IDEMPOTENCY_KEY="P-1")
    assert header.content == first.content  # the header is the same key
    problem(pay(api, order, {**body, "amount_q": 501}), 422, "idempotency_key_reused")
    mismatch = pay(api, order, body, HTTP_IDEMPOTENCY_KEY="P-2")
    assert problem(mismatch, 400, "validation_error")["errors"][0]["pointer"] == "/idempotency_key"


def test_a_failed_payment_frees_its_key(api, order):
    body = {"method": "cash", "amount_q": 5000, "idempotency_key": "P-1"}
    problem(pay(api, order, body), 409, "overpayment")
    assert pay(api, order, {**body, "amount_q": 500}).status_code == 201


def test_refunds_over_http(api, order):
    pay(api, order, {"method": "cash", "amount_q": 1750})
    response = api.post_json(f"/api/orders/{order}/refunds/",
                             {"lines": [{"line_id": "L2", "qty": 1}], "reason": "stale croissant"})
    assert response.status_code == 201, response.content
    body = data(response)
    assert (body["amount_q"], body["status"], body["lines"]) == (750, "done", [{"line_id": "L2", "qty": "1"}])
    problem(api.post_json(f"/api/orders/{order}/refunds/", {"amount_q": 1001, "reason": "x"}),
            409, "refund_exceeds_paid")
    errors = problem(api.post_json(f"/api/orders/{order}/refunds/",
                                   {"lines": [{"line_id": "L2", "qty": 1}], "reason": "again"}),
                     400, "validation_error")["errors"]
    assert errors[0]["pointer"] == "/lines/0/qty"
    ledger = data(api.get(f"/api/orders/{order}/payments/"))
    assert [p["amount_q"] for p in ledger["payments"]] == [1750]
    assert [r["amount_q"] for r in ledger["refunds"]] == [750]
    o = data(api.get(f"/api/orders/{order}/"))
    assert (o["payment_status"], o["amount_refunded_q"], o["amount_due_q"]) == ("partially_refunded", 750, 750)


def test_a_keyed_refund_is_replayed(api, order):
    pay(api, order, {"method": "cash", "amount_q": 1750})
    body = {"amount_q": 100, "reason": "x", "idempotency_key": "R-1"}
    first = api.post_json(f"/api/orders/{order}/refunds/", body)
    again = api.post_json(f"/api/orders/{order}/refunds/", body)
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Refund.objects.count() == 1


def test_completed_is_refused_until_paid(api, paid_pos):
    ref = committed_order("pos")
    for to in ("preparing", "ready"):
        assert api.post_json(f"/api/orders/{ref}/transition/", {"to": to}).status_code == 200
    body = problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": "completed"}), 409, "payment_required")
    assert body["amount_due_q"] == 500
    pay(api, ref, {"method": "cash", "amount_q": 500})
    assert api.post_json(f"/api/orders/{ref}/transition/", {"to": "completed"}).status_code == 200


def test_orders_filter_on_payment_status(api, pos):
    unpaid = committed_order("pos")
    partly = committed_order("pos")
    paid = committed_order("pos")
    refunded = committed_order("pos")
    pay(api, partly, {"method": "cash", "amount_q": 100})
    pay(api, paid, {"method": "cash", "amount_q": 500})
    pay(api, refunded, {"method": "cash", "amount_q": 500})
    api.post_json(f"/api/orders/{refunded}/refunds/", {"amount_q": 500, "reason": "x"})
    seen = {status: [o["ref"] for o in data(api.get(f"/api/orders/?payment_status={status}"))["results"]]
            for status in ("unpaid", "partially_paid", "paid", "partially_refunded", "refunded")}
    assert seen == {"unpaid": [unpaid], "partially_paid": [partly], "paid": [paid], "partially_refunded": [],
                    "refunded": [refunded]}
    errors = problem(api.get("/api/orders/?payment_status=owed"), 400, "validation_error")["errors"]
    assert [(e["pointer"], e["code"]) for e in errors] == [("/payment_status", "invalid_choice")]


def test_another_channels_order_is_not_found(pos, web, order):
    outsider = client_for(make_user("outsider", web))
    for method, path, body in [
        ("GET", f"/api/orders/{order}/payments/", None),
        ("POST", f"/api/orders/{order}/payments/", {"method": "cash", "amount_q": 1}),
        ("POST", f"/api/orders/{order}/refunds/", {"amount_q": 1, "reason": "x"}),
    ]:
        answer = outsider.get(path) if method == "GET" else outsider.post_json(path, body)
        problem(answer, 404, "not_found")
    assert not Payment.objects.exists()


def test_refunds_has_no_get(api, order):
    problem(api.get(f"/api/orders/{order}/refunds/"), 405, "method_not_allowed")
