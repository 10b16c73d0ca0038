"""``POST sessions/`` with ``ops`` and ``"commit": true``: an order in one idempotent
call, all or nothing; ``placed_at`` and ``external_ref`` on the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator

from omniman.models import ChannelGrant, IdempotencyKey, Order, Session
from omniman.testing import make_channel

from .conftest import data, open_session, problem

pytestmark = pytest.mark.django_db

LINES = [{"op": "add_line", "sku": "COFFEE", "qty": 2, "unit_price_q": 500},
         {"op": "add_line", "sku": "CAKE", "qty": "0.5", "unit_price_q": 1200}]


@pytest.fixture
def ifood(user):
    channel = make_channel("ifood", external_ref_path="external_ref")
    ChannelGrant.objects.create(user=user, channel=channel)
    return channel


def placed(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="seconds").replace("+00:00", "Z")


def order_body(ref: str = "M-1", key: str | None = "IMPORT-M-1", **extra) -> dict:
    body = {"channel_code": "ifood", "data": {"external_ref": ref}, "ops": LINES, "commit": True, **extra}
    if key is not None:
        body["idempotency_key"] = key
    return body


def test_one_call_answers_201_with_the_commit_body(api, ifood):
    at = placed(hours=-1)
    response = api.post_json("/api/sessions/", order_body(placed_at=at))
    assert response.status_code == 201, response.content
    body = data(response)
    order = Order.objects.get()
    assert body == {"order_ref": order.ref, "status": "new", "total_q": 1600, "currency": "BRL",
                    "items_count": 2, "session_key": order.session_key, "channel_code": "ifood"}
    assert not response.has_header("Idempotent-Replayed")
    shown = data(api.get(f"/api/orders/{order.ref}/"))
    assert (shown["external_ref"], shown["placed_at"], shown["total_q"]) == ("M-1", at, 1600)
    session = data(api.get(f"/api/sessions/{order.session_key}/?channel_code=ifood"))
    assert (session["state"], session["rev"], session["order_ref"]) == ("committed", 1, order.ref)


def test_the_same_call_again_is_replayed_byte_for_byte(api, ifood):
    first = api.post_json("/api/sessions/", order_body())
    again = api.post_json("/api/sessions/", order_body())
    assert (again.status_code, again.content) == (201, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_the_key_may_come_in_the_header(api, ifood):
    response = api.post_json("/api/sessions/", order_body(key=None), HTTP_IDEMPOTENCY_KEY="H-1")
    assert response.status_code == 201
    assert IdempotencyKey.objects.get().key == "H-1"


def test_the_key_with_another_body_is_422(api, ifood):
    api.post_json("/api/sessions/", order_body())
    problem(api.post_json("/api/sessions/", order_body(ref="M-2")), 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_a_commit_without_a_key_is_refused_at_idempotency_key(api, ifood):
    body = problem(api.post_json("/api/sessions/", order_body(key=None)), 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [("/idempotency_key", "required")]
    assert not Session.objects.exists()


def test_another_key_for_a_known_external_ref_is_409_naming_the_order(api, ifood):
    first = data(api.post_json("/api/sessions/", order_body()))
    body = problem(api.post_json("/api/sessions/", order_body(key="OTHER")), 409, "external_ref_exists")
    assert (body["order_ref"], body["external_ref"]) == (first["order_ref"], "M-1")
    assert Order.objects.count() == Session.objects.count() == 1


def test_a_plain_commit_of_a_known_external_ref_is_409_too(api, ifood):
    first = data(api.post_json("/api/sessions/", order_body()))
    open_session(api, channel="ifood", key="LATE", data={"external_ref": "M-1"})
    api.post_json("/api/sessions/LATE/modify/", {"channel_code": "ifood", "ops": LINES})
    response = api.post_json("/api/sessions/LATE/commit/", {"channel_code": "ifood", "idempotency_key": "C"})
    assert problem(response, 409, "external_ref_exists")["order_ref"] == first["order_ref"]


def test_a_failing_op_leaves_nothing_and_frees_the_key(api, ifood):
    bad = order_body(ops=[LINES[0], {"op": "add_line", "sku": "X", "qty": 0, "unit_price_q": 1}])
    body = problem(api.post_json("/api/sessions/", bad), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/ops/1/qty"
    assert not (Session.objects.exists() or Order.objects.exists() or IdempotencyKey.objects.exists())
    assert api.post_json("/api/sessions/", order_body()).status_code == 201


def test_a_blocked_commit_leaves_nothing(api, web):
    body = {"channel_code": "web", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1}], "commit": True,
            "idempotency_key": "W"}
    assert problem(api.post_json("/api/sessions/", body), 409, "commit_blocked")["reasons"][0]["code"] == "missing_check"
    assert not Session.objects.exists()


@pytest.mark.parametrize(("extra", "pointer", "code"), [
    ({"commit": "yes"}, "/commit", "invalid_type"),
    ({"placed_at": "2026-01-01T00:00:00"}, "/placed_at", "invalid"),
    ({"placed_at": 1700000000}, "/placed_at", "invalid"),
    ({"placed_at": None}, "/placed_at", "invalid"),
    # Made when the test runs (not when it is collected, minutes earlier in a long run).
    ({"placed_at": lambda: placed(minutes=6)}, "/placed_at", "out_of_range"),
    ({"placed_at": lambda: placed(days=-31)}, "/placed_at", "out_of_range"),
    ({"ops": None}, "/ops", "invalid_type"),
    ({"ops": []}, "/ops", "empty"),
])
def test_bad_fields_are_refused_at_their_pointer(api, ifood, extra, pointer, code):
    extra = {name: value() if callable(value) else value for name, value in extra.items()}
    body = problem(api.post_json("/api/sessions/", order_body(**extra)), 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [(pointer, code)]
    assert not Session.objects.exists()


def test_placed_at_needs_commit(api, ifood):
    body = {"channel_code": "ifood", "placed_at": placed(), "ops": LINES}
    errors = problem(api.post_json("/api/sessions/", body), 400, "validation_error")["errors"]
    assert [(e["pointer"], e["code"]) for e in errors] == [("/placed_at", "not_allowed")]


def test_ops_without_commit_open_the_session_at_rev_1(api, pos):
    response = api.post_json("/api/sessions/", {"channel_code": "pos", "session_key": "T", "ops": LINES})
    assert response.status_code == 201
    body = data(response)
    assert (body["rev"], body["total_q"], body["state"], len(body["items"])) == (1, 1600, "open", 2)
    assert response["ETag"] and response["Location"].endswith("/api/sessions/T/?channel_code=pos")
    keyed = {"channel_code": "pos", "session_key": "U", "ops": LINES, "idempotency_key": "U"}
    first = api.post_json("/api/sessions/", keyed)
    again = api.post_json("/api/sessions/", keyed)
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content


def test_orders_filter_on_external_ref(api, ifood):
    for ref in ("M-1", "M-2"):
        api.post_json("/api/sessions/", order_body(ref=ref, key=ref))
    rows = data(api.get("/api/orders/?external_ref=M-2"))["results"]
    assert [r["external_ref"] for r in rows] == ["M-2"]
    assert data(api.get("/api/orders/?external_ref=NONE"))["results"] == []
    assert len(data(api.get("/api/orders/?external_ref="))["results"]) == 2  # empty: no filter


def test_an_import_is_valid_by_the_schema_and_its_answer_too(api, anon, ifood):
    doc = data(anon.get("/api/schema/?format=json"))
    schemas = doc["components"]["schemas"]

    def valid(name, value):
        return Draft202012Validator({**schemas[name], "components": doc["components"]}).is_valid(value)

    body = order_body(placed_at=placed(minutes=-5))
    assert valid("SessionCreateInRequest", body)
    assert not valid("SessionCreateInRequest", {"channel_code": "ifood", "placed_at": placed()})
    assert not valid("SessionCreateInRequest", {**body, "placed_at": "2026-01-01T00:00:00"})
    assert not valid("SessionCreateInRequest", {**body, "commit": "true"})
    answer = data(api.post_json("/api/sessions/", body))
    assert valid("SessionCreated", answer)
    order = data(api.get(f"/api/orders/{answer['order_ref']}/"))
    assert valid("OrderOut", order)
