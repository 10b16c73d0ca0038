"""The seeded channels behave as the example guide says, over HTTP."""

from __future__ import annotations

import pytest

from tests.example.harness import Example


@pytest.fixture(scope="module")
def token(example: Example) -> str:
    return example.manage("omniman_token", "client", "--operator").stdout.strip()


def test_spec_bodies_on_pos(example: Example, token: str) -> None:
    """The bodies existing POS clients send work exactly as written; the commit replays."""
    assert example.request("POST", "/api/sessions/", {"channel_code": "pos"}, token=token).status == 201
    created = example.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": "SESS-001"}, token=token)
    assert created.status == 201
    modified = example.request(
        "POST", "/api/sessions/SESS-001/modify/",
        {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]},
        token=token,
    )
    assert (modified.status, modified.body["rev"], modified.body["total_q"]) == (200, 1, 500)
    commit = {"channel_code": "pos", "idempotency_key": "COMMIT-1"}
    first = example.request("POST", "/api/sessions/SESS-001/commit/", commit, token=token)
    assert first.status == 201
    assert first.body["status"] == "new"
    assert (first.body["total_q"], first.body["currency"], first.body["items_count"]) == (500, "BRL", 1)
    again = example.request("POST", "/api/sessions/SESS-001/commit/", commit, token=token)
    assert again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_pos_flow(example: Example, token: str) -> None:
    """new → preparing → ready → completed; cancelled from any but completed."""
    def order(key: str) -> str:
        example.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": key}, token=token)
        example.request(
            "POST", f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 1200}]},
            token=token,
        )
        return example.request("POST", f"/api/sessions/{key}/commit/", {"channel_code": "pos"}, token=token).body[
            "order_ref"
        ]

    def move(ref: str, to: str) -> int:
        return example.request("POST", f"/api/orders/{ref}/transition/", {"to": to}, token=token).status

    ref = order("FLOW-1")
    assert move(ref, "ready") == 409
    assert [move(ref, s) for s in ("preparing", "ready", "completed")] == [200, 200, 200]
    assert move(ref, "cancelled") == 409
    other = order("FLOW-2")
    assert move(other, "preparing") == 200
    assert move(other, "cancelled") == 200
    assert example.request("GET", f"/api/orders/{other}/", token=token).body["status"] == "cancelled"


def test_ifood_takes_external_ref_from_data(example: Example, token: str) -> None:
    example.request("POST", "/api/sessions/", {"channel_code": "ifood", "session_key": "IF-1"}, token=token)
    example.request(
        "POST", "/api/sessions/IF-1/modify/",
        {"channel_code": "ifood", "ops": [
            {"op": "add_line", "sku": "ANY-SKU", "qty": 2, "unit_price_q": 1990},
            {"op": "set_data", "path": "external_ref", "value": "IFOOD-98765"},
        ]},
        token=token,
    )
    ref = example.request("POST", "/api/sessions/IF-1/commit/", {"channel_code": "ifood"}, token=token).body["order_ref"]
    order = example.request("GET", f"/api/orders/{ref}/", token=token).body
    assert (order["external_ref"], order["total_q"]) == ("IFOOD-98765", 3980)


def test_web_prices_from_the_catalog_and_requires_a_precondition(example: Example, token: str) -> None:
    example.request("POST", "/api/sessions/", {"channel_code": "web", "session_key": "WEB-1"}, token=token)
    ops = [{"op": "add_line", "sku": "CAPPUCCINO", "qty": 2}]
    no_rev = example.request("POST", "/api/sessions/WEB-1/modify/", {"channel_code": "web", "ops": ops}, token=token)
    assert no_rev.status == 428
    priced = example.request(
        "POST", "/api/sessions/WEB-1/modify/", {"channel_code": "web", "ops": ops, "rev": 0}, token=token
    )
    assert priced.status == 200
    assert priced.body["items"][0]["unit_price_q"] == 650
    assert priced.body["total_q"] == 1300
    with_price = example.request(
        "POST", "/api/sessions/WEB-1/modify/",
        {"channel_code": "web", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 1}], "rev": 1},
        token=token,
    )
    assert with_price.status == 400
    unknown = example.request(
        "POST", "/api/sessions/WEB-1/modify/",
        {"channel_code": "web", "ops": [{"op": "add_line", "sku": "PIZZA", "qty": 1}], "rev": 1},
        token=token,
    )
    assert unknown.status == 400
    assert unknown.body["errors"][0]["pointer"].startswith("/ops/0")


def _directives(example: Example, token: str, topic: str) -> list[dict]:
    return example.request("GET", f"/api/directives/?topic={topic}", token=token).body["results"]


def test_web_commit_runs_stock_check_then_payment_and_notification(example: Example, token: str) -> None:
    """In process (no broker): the stock check is fresh after the modify, and the
    post-commit directives are done by the time the commit answers."""
    example.request("POST", "/api/sessions/", {"channel_code": "web", "session_key": "WEB-2"}, token=token)
    example.request(
        "POST", "/api/sessions/WEB-2/modify/",
        {"channel_code": "web", "ops": [{"op": "add_line", "sku": "ESPRESSO", "qty": 3}], "rev": 0},
        token=token,
    )
    session = example.request("GET", "/api/sessions/WEB-2/?channel_code=web", token=token).body
    assert session["checks"]["stock"]["rev"] == 1
    assert session["checks"]["stock"]["ok"] is True
    commit = example.request(
        "POST", "/api/sessions/WEB-2/commit/", {"channel_code": "web", "idempotency_key": "W2"}, token=token
    )
    assert commit.status == 201
    ref = commit.body["order_ref"]
    for topic in ("payment.capture", "notification.order_committed"):
        mine = [d for d in _directives(example, token, topic) if d["payload"].get("order_ref") == ref]
        assert [d["status"] for d in mine] == ["done"], topic
        # The café's capture handler asks for more attempts than the default 5.
        assert mine[0]["max_attempts"] == (10 if topic == "payment.capture" else 5), topic
    # payment.capture recorded what the order owed as a captured card payment.
    order = example.request("GET", f"/api/orders/{ref}/", token=token).body
    assert (order["payment_status"], order["amount_paid_q"], order["amount_due_q"]) == ("paid", 1350, 0)
    [payment] = example.request("GET", f"/api/orders/{ref}/payments/", token=token).body["payments"]
    assert (payment["method"], payment["status"], payment["amount_q"]) == ("card", "captured", 1350)
    assert payment["provider_ref"].startswith("ch_")


def test_pos_takes_cash_with_change_and_card_through_the_terminal(example: Example, token: str) -> None:
    example.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": "PAY-1"}, token=token)
    example.request("POST", "/api/sessions/PAY-1/modify/", {"channel_code": "pos", "ops": [
        {"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 1200}]}, token=token)
    ref = example.request("POST", "/api/sessions/PAY-1/commit/", {"channel_code": "pos"}, token=token).body["order_ref"]
    cash = example.request("POST", f"/api/orders/{ref}/payments/",
                           {"method": "cash", "amount_q": 700, "tendered_q": 1000}, token=token)
    assert (cash.status, cash.body["change_q"], cash.body["status"]) == (201, 300, "captured")
    card = example.request("POST", f"/api/orders/{ref}/payments/",
                           {"method": "card", "amount_q": 500, "tip_q": 100}, token=token)
    assert (card.status, card.body["status"]) == (201, "pending")  # the terminal settles it by a directive ...
    [payment] = [p for p in example.request("GET", f"/api/orders/{ref}/payments/", token=token).body["payments"]
                 if p["method"] == "card"]
    assert payment["status"] == "captured"  # ... run in process after the payment's commit
    order = example.request("GET", f"/api/orders/{ref}/", token=token).body
    assert (order["payment_status"], order["amount_due_q"], order["tip_q"]) == ("paid", 0, 100)


def test_web_refuses_completed_until_paid(example: Example, token: str) -> None:
    """A web order whose payment was refunded owes its total again: not completed."""
    example.request("POST", "/api/sessions/", {"channel_code": "web", "session_key": "WEB-PAY"}, token=token)
    example.request("POST", "/api/sessions/WEB-PAY/modify/", {
        "channel_code": "web", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1}], "rev": 0}, token=token)
    ref = example.request("POST", "/api/sessions/WEB-PAY/commit/", {"channel_code": "web"}, token=token).body["order_ref"]
    refund = example.request("POST", f"/api/orders/{ref}/refunds/", {"amount_q": 500, "reason": "no milk"},
                             token=token)
    assert refund.status == 201, refund.body
    for to in ("preparing", "ready"):
        assert example.request("POST", f"/api/orders/{ref}/transition/", {"to": to}, token=token).status == 200
    refused = example.request("POST", f"/api/orders/{ref}/transition/", {"to": "completed"}, token=token)
    assert (refused.status, refused.body["code"], refused.body["amount_due_q"]) == (409, "payment_required", 500)


def test_web_refuses_to_commit_a_sold_out_product(example: Example, token: str) -> None:
    example.request("POST", "/api/sessions/", {"channel_code": "web", "session_key": "WEB-3"}, token=token)
    example.request(
        "POST", "/api/sessions/WEB-3/modify/",
        {"channel_code": "web", "ops": [{"op": "add_line", "sku": "SOLDOUT", "qty": 1}], "rev": 0},
        token=token,
    )
    session = example.request("GET", "/api/sessions/WEB-3/?channel_code=web", token=token).body
    assert session["checks"]["stock"]["ok"] is False
    blocked = example.request("POST", "/api/sessions/WEB-3/commit/", {"channel_code": "web"}, token=token)
    assert blocked.status == 409
    assert blocked.body["code"] == "commit_blocked"


def test_shop_prices_options_takes_a_coupon_and_adds_the_tax(example: Example, token: str) -> None:
    """A cappuccino with oat milk and two shots, WELCOME10, and 10 % tax on top."""
    assert example.request("POST", "/api/sessions/", {"channel_code": "shop", "session_key": "SHOP-1"},
                           token=token).status == 201
    ops = [{"op": "add_line", "sku": "CAPPUCCINO", "qty": 1, "options": [{"code": "OAT"}, {"code": "SHOT", "qty": 2}]},
           {"op": "add_line", "sku": "CROISSANT", "qty": 1},
           {"op": "apply_coupon", "code": "WELCOME10"}]
    body = example.request("POST", "/api/sessions/SHOP-1/modify/", {"channel_code": "shop", "ops": ops},
                           token=token).body
    assert [line["line_total_q"] for line in body["items"]] == [650 + 150 + 400, 750]
    # subtotal 1950; −round-half-even(195) = −195; tax round-half-even(175.5) = 176.
    assert {k: v for k, v in body["pricing"].items() if k != "adjustments"} == {
        "subtotal_q": 1950, "discounts_q": -195, "taxes_q": 176, "fees_q": 0, "total_q": 1931}
    bad = example.request("POST", "/api/sessions/SHOP-1/modify/", {"channel_code": "shop", "ops": [
        {"op": "apply_coupon", "code": "FREE"}]}, token=token)
    assert (bad.status, bad.body["errors"][0]["pointer"]) == (400, "/ops/0/code")
    two_milks = example.request("POST", "/api/sessions/SHOP-1/modify/", {"channel_code": "shop", "ops": [
        {"op": "set_options", "line_id": "L1", "options": [{"code": "OAT"}, {"code": "SOY"}]}]}, token=token)
    assert (two_milks.status, two_milks.body["errors"][0]["pointer"]) == (400, "/ops/0/options/1/code")
    commit = example.request("POST", "/api/sessions/SHOP-1/commit/", {"channel_code": "shop"}, token=token)
    assert (commit.status, commit.body["total_q"]) == (201, 1931)
