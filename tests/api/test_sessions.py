from __future__ import annotations

import pytest

from omniman.models import Session
from omniman_api.conditional import etag as etag_of

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db


def test_create_answers_201_with_location_and_etag(api):
    response = open_session(api, handle_type="table", handle_ref="12", data={"guests": 2})
    body = data(response)
    assert response["Location"] == "http://testserver/api/sessions/SESS-001/?channel_code=pos"
    assert response["ETag"] == etag_of(Session.objects.get())
    assert body["rev"] == 0 and body["state"] == "open" and body["items"] == []
    assert body["handle_type"] == "table" and body["handle_ref"] == "12" and body["data"] == {"guests": 2}
    assert body["currency"] == "BRL" and body["channel_code"] == "pos"
    assert "order_ref" not in body
    detail = api.get(response["Location"])
    assert detail.status_code == 200 and data(detail) == body


def test_create_an_existing_key_is_409(api):
    open_session(api)
    problem(api.post_json("/api/sessions/", {"channel_code": "pos", "session_key": "SESS-001"}), 409, "session_exists")


@pytest.mark.parametrize("path", ["/api/sessions", "/api/sessions/"])
def test_every_path_answers_with_and_without_slash(api, path):
    created = api.post_json(path, {"channel_code": "pos", "session_key": "K1"})
    assert created.status_code == 201
    for url in ("/api/sessions/K1/modify", "/api/sessions/K1/modify/"):
        response = api.post_json(url, {"channel_code": "pos", "ops": [{"op": "merge_lines"}]})
        assert response.status_code == 200, response.content
    assert api.get("/api/sessions/K1?channel_code=pos").status_code == 200
    assert api.get("/api/health").status_code == 200
    assert api.post_json("/api/sessions/K1/abandon", {"channel_code": "pos"}).status_code == 200


def test_modify_applies_every_op_as_one_rev(api):
    open_session(api)
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [
        {"op": "add_line", "sku": "COFFEE", "qty": "0.25", "unit_price_q": 500, "line_id": "A"},
        {"op": "add_line", "sku": "CAKE", "qty": 2, "unit_price_q": 1200},
        {"op": "set_data", "path": "table.guests", "value": 3},
    ]})
    body = data(response)
    assert body["rev"] == 1 and body["total_q"] == 125 + 2400
    assert [i["qty"] for i in body["items"]] == ["0.25", "2"]
    assert body["data"] == {"table": {"guests": 3}}
    assert response["ETag"] == etag_of(Session.objects.get())


def test_a_rejected_modify_names_the_op_and_changes_nothing(api):
    open_session(api)
    add_coffee(api)
    before = Session.objects.get()
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [
        {"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 1200},
        {"op": "set_qty", "line_id": "NOPE", "qty": 2},
    ]})
    body = problem(response, 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/ops/1/line_id"
    after = Session.objects.get()
    assert (after.rev, after.items, after.total_q) == (before.rev, before.items, before.total_q)


@pytest.mark.parametrize(("op", "pointer"), [
    ({"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500.0}, "/ops/0/unit_price_q"),
    ({"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": "500"}, "/ops/0/unit_price_q"),
    ({"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": -1}, "/ops/0/unit_price_q"),
    ({"op": "add_line", "sku": "COFFEE", "qty": 0.0001, "unit_price_q": 5}, "/ops/0/qty"),
    ({"op": "add_line", "sku": "COFFEE", "qty": -1, "unit_price_q": 5}, "/ops/0/qty"),
    ({"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 5, "colour": "red"}, "/ops/0/colour"),
    ({"op": "fly"}, "/ops/0/op"),
    ({"op": "add_line", "sku": "bad sku!", "qty": 1, "unit_price_q": 5}, "/ops/0/sku"),
])
def test_bad_ops_are_400_at_their_pointer(api, op, pointer):
    open_session(api)
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [op]})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == pointer
    assert Session.objects.get().rev == 0


def test_a_quantity_keeps_the_digits_the_client_sent(api):
    open_session(api)
    response = api.post(
        "/api/sessions/SESS-001/modify/",
        b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 0.1000000000000000001, '
        b'"unit_price_q": 10}]}',
        content_type="application/json",
    )
    # As a float this would be 0.1; as the decimal sent it has too many places.
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/ops/0/qty"
    ok = api.post(
        "/api/sessions/SESS-001/modify/",
        b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 1.5, "unit_price_q": 333},'
        b'{"op": "set_data", "path": "ratio", "value": 0.5}]}',
        content_type="application/json",
    )
    body = data(ok)
    assert body["items"][0]["qty"] == "1.5" and body["items"][0]["line_total_q"] == 500  # 499.5 → 500
    assert body["data"] == {"ratio": 0.5}


def test_too_many_ops_and_empty_ops(api, settings):
    open_session(api)
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_OPS_PER_MODIFY": 2}
    ops = [{"op": "merge_lines"}] * 3
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": ops})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/ops"
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": []})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/ops"


def test_a_total_over_2_53_is_refused_at_the_op_that_crossed_it(api):
    open_session(api)
    big = 10**12
    ops = [{"op": "add_line", "sku": "GOLD", "qty": 1000000, "unit_price_q": big}]
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [
        {"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 5}, *ops,
    ]})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"].startswith("/ops/1")


def test_missing_and_unknown_body_fields(api):
    open_session(api)
    response = api.post_json("/api/sessions/SESS-001/modify/", {"ops": [], "colour": 1})
    pointers = {e["pointer"] for e in problem(response, 400, "validation_error")["errors"]}
    assert pointers == {"/colour", "/channel_code"}


def test_commit_then_again_without_key_is_409_with_the_order_ref(api):
    open_session(api)
    add_coffee(api)
    first = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"})
    assert first.status_code == 201
    again = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos", "idempotency_key": "new"})
    assert problem(again, 409, "already_committed")["order_ref"] == data(first)["order_ref"]
    detail = data(api.get("/api/sessions/SESS-001/?channel_code=pos"))
    assert detail["state"] == "committed" and detail["order_ref"] == data(first)["order_ref"]


def test_commit_of_an_empty_session_is_blocked_with_reasons(api):
    open_session(api)
    body = problem(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}), 409, "commit_blocked")
    assert [r["code"] for r in body["reasons"]] == ["empty_session"]


def test_web_commit_needs_a_fresh_stock_check(api):
    open_session(api, channel="web", key="W1")
    response = api.post_json("/api/sessions/W1/modify/", {"channel_code": "web", "rev": 0, "ops": [
        {"op": "add_line", "sku": "COFFEE", "qty": 1},
    ]})
    assert data(response)["total_q"] == 500
    body = problem(api.post_json("/api/sessions/W1/commit/", {"channel_code": "web"}), 409, "commit_blocked")
    assert body["reasons"][0]["code"] == "missing_check"


def test_abandon_then_abandon_again_and_commit(api):
    open_session(api)
    response = api.post_json("/api/sessions/SESS-001/abandon/", {"channel_code": "pos"})
    assert data(response)["state"] == "abandoned" and response["ETag"] == etag_of(Session.objects.get())
    problem(api.post_json("/api/sessions/SESS-001/abandon/", {"channel_code": "pos"}), 409, "session_not_open")
    problem(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}), 409, "session_not_open")
    problem(api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [
        {"op": "merge_lines"}]}), 409, "session_not_open")


def test_resolve_applies_the_action_and_drops_the_issue(api):
    open_session(api)
    add_coffee(api)
    Session.objects.filter(session_key="SESS-001").update(issues=[{
        "id": "stock-1", "code": "stock.short", "blocking": True, "message": "Only 0 left",
        "actions": [{"id": "remove", "label": "Remove the line", "ops": [{"op": "remove_line", "line_id": "L1"}]}],
        "source": "stock",
    }])
    detail = data(api.get("/api/sessions/SESS-001/?channel_code=pos"))
    assert detail["issues"] == [{"id": "stock-1", "code": "stock.short", "blocking": True,
                                 "message": "Only 0 left", "actions": [{"id": "remove", "label": "Remove the line"}]}]
    bad = api.post_json("/api/sessions/SESS-001/resolve/", {"channel_code": "pos", "issue_id": "x", "action_id": "y"})
    assert problem(bad, 400, "validation_error")["errors"][0]["pointer"] == "/issue_id"
    bad = api.post_json("/api/sessions/SESS-001/resolve/",
                        {"channel_code": "pos", "issue_id": "stock-1", "action_id": "y"})
    assert problem(bad, 400, "validation_error")["errors"][0]["pointer"] == "/action_id"
    ok = api.post_json("/api/sessions/SESS-001/resolve/",
                       {"channel_code": "pos", "issue_id": "stock-1", "action_id": "remove"})
    body = data(ok)
    assert body["issues"] == [] and body["items"] == [] and body["rev"] == 2


def test_inactive_channel_is_a_validation_error(api, pos):
    open_session(api)
    pos.is_active = False
    pos.save()
    response = api.post_json("/api/sessions/", {"channel_code": "pos"})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/channel_code"
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [{"op": "merge_lines"}]})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/channel_code"


def test_locked_channel_modify_is_403(api, pos):
    open_session(api)
    pos.config = {**pos.config, "edit_policy": "locked"}
    pos.save()
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [{"op": "merge_lines"}]})
    problem(response, 403, "permission_denied")
    assert Session.objects.get().rev == 0


def test_detail_requires_channel_code(api):
    open_session(api)
    response = api.get("/api/sessions/SESS-001/")
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/channel_code"
    problem(api.get("/api/sessions/NOPE/?channel_code=pos"), 404, "not_found")


def test_list_filters(api):
    open_session(api, key="A", handle_type="table", handle_ref="1")
    open_session(api, key="B", handle_type="table", handle_ref="2")
    open_session(api, channel="web", key="C")
    api.post_json("/api/sessions/B/abandon/", {"channel_code": "pos"})

    def keys(query: str) -> list[str]:
        response = api.get("/api/sessions/" + query)
        assert response.status_code == 200, response.content
        return [x["session_key"] for x in data(response)["results"]]

    assert keys("") == ["C", "B", "A"]
    assert keys("?channel_code=pos") == ["B", "A"]
    assert keys("?state=open") == ["C", "A"]
    assert keys("?handle_type=table&handle_ref=2") == ["B"]
    problem(api.get("/api/sessions/?state=sleeping"), 400, "validation_error")
