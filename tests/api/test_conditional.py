"""ETags, If-None-Match, If-Match and body rev (SPEC, Preconditions)."""

from __future__ import annotations

import pytest

from omniman.models import Session
from omniman.services import apply_check_result
from omniman_api.conditional import etag as etag_of

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db

DETAIL = "/api/sessions/SESS-001/?channel_code=pos"
MODIFY = "/api/sessions/SESS-001/modify/"
OPS = {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 1200}]}


def test_if_none_match_answers_304_without_a_body(api):
    etag = open_session(api)["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    response = api.get(DETAIL, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304 and response.content == b"" and response["ETag"] == etag
    assert api.get(DETAIL, HTTP_IF_NONE_MATCH=f'"x", W/{etag}').status_code == 304
    assert api.get(DETAIL, HTTP_IF_NONE_MATCH="*").status_code == 304
    assert api.get(DETAIL, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_etag_changes_exactly_when_the_session_changes(api, pos):
    etag = open_session(api)["ETag"]
    assert api.get(DETAIL)["ETag"] == etag
    pos.name = "renamed"
    pos.save()
    assert api.get(DETAIL)["ETag"] == etag
    after_modify = add_coffee(api)["ETag"]
    assert after_modify != etag
    apply_check_result(channel="pos", session_key="SESS-001", rev=1, code="stock", ok=True)
    after_check = api.get(DETAIL)["ETag"]
    assert after_check != after_modify
    assert api.get(DETAIL, HTTP_IF_NONE_MATCH=after_modify).status_code == 200
    after_abandon = api.post_json("/api/sessions/SESS-001/abandon/", {"channel_code": "pos"})["ETag"]
    assert after_abandon not in (after_check, after_modify, etag)


@pytest.mark.parametrize("header", ["{etag}", '"nope", {etag}', "*"])
def test_if_match_one_tag_a_list_or_star(api, header):
    etag = open_session(api)["ETag"]
    response = api.post_json(MODIFY, OPS, HTTP_IF_MATCH=header.format(etag=etag))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("header", ['"stale"', "W/{etag}", "garbage"])
def test_stale_if_match_is_412_with_the_current_etag(api, header):
    etag = open_session(api)["ETag"]
    add_coffee(api)
    current = etag_of(Session.objects.get())
    response = api.post_json(MODIFY, OPS, HTTP_IF_MATCH=header.format(etag=etag))
    body = problem(response, 412, "precondition_failed")
    assert body["current_rev"] == 1 and response["ETag"] == current
    assert Session.objects.get().rev == 1


def test_body_rev(api):
    open_session(api)
    assert api.post_json(MODIFY, {**OPS, "rev": 0}).status_code == 200
    response = api.post_json(MODIFY, {**OPS, "rev": 0})
    assert problem(response, 412, "precondition_failed")["current_rev"] == 1
    assert response["ETag"] == etag_of(Session.objects.get())
    # rev ignores check changes: a check result does not make rev 1 stale.
    apply_check_result(channel="pos", session_key="SESS-001", rev=1, code="stock", ok=True)
    assert api.post_json(MODIFY, {**OPS, "rev": 1}).status_code == 200
    problem(api.post_json(MODIFY, {**OPS, "rev": "1"}), 400, "validation_error")


def test_require_if_match_channel_answers_428_without_a_precondition(api):
    open_session(api, channel="web", key="W1")
    ops = {"channel_code": "web", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1}]}
    problem(api.post_json("/api/sessions/W1/modify/", ops), 428, "precondition_required")
    etag = api.get("/api/sessions/W1/?channel_code=web")["ETag"]
    assert api.post_json("/api/sessions/W1/modify/", ops, HTTP_IF_MATCH=etag).status_code == 200
    assert api.post_json("/api/sessions/W1/modify/", {**ops, "rev": 1}).status_code == 200


def test_commit_and_abandon_honour_if_match_but_never_require_it(api):
    etag = open_session(api)["ETag"]
    add_coffee(api)
    problem(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}, HTTP_IF_MATCH=etag),
            412, "precondition_failed")
    problem(api.post_json("/api/sessions/SESS-001/abandon/", {"channel_code": "pos"}, HTTP_IF_MATCH=etag),
            412, "precondition_failed")
    current = api.get(DETAIL)["ETag"]
    response = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}, HTTP_IF_MATCH=current)
    assert response.status_code == 201


def test_order_etag_304_and_transition_if_match(api):
    open_session(api)
    add_coffee(api)
    ref = data(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}))["order_ref"]
    detail = api.get(f"/api/orders/{ref}/")
    etag = detail["ETag"]
    assert api.get(f"/api/orders/{ref}", HTTP_IF_NONE_MATCH=etag).status_code == 304
    moved = api.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"}, HTTP_IF_MATCH=etag)
    assert moved.status_code == 200 and moved["ETag"] != etag and data(moved)["status"] == "preparing"
    stale = api.post_json(f"/api/orders/{ref}/transition/", {"to": "ready"}, HTTP_IF_MATCH=etag)
    problem(stale, 412, "precondition_failed")
    assert stale["ETag"] == moved["ETag"]
    assert api.get(f"/api/orders/{ref}/", HTTP_IF_NONE_MATCH=etag).status_code == 200
