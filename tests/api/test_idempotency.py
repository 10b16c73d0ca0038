"""Idempotency keys on commit, modify and create (SPEC, Idempotency)."""

from __future__ import annotations

import pytest

from omniman.models import IdempotencyKey, Order, Session

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db

MODIFY = "/api/sessions/SESS-001/modify/"
OPS = {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 1200}]}


def test_commit_replays_the_stored_answer(api):
    open_session(api)
    add_coffee(api)
    first = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos", "idempotency_key": "C-1"})
    again = api.post_json("/api/sessions/SESS-001/commit", {"channel_code": "pos"}, HTTP_IDEMPOTENCY_KEY="C-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1


def test_a_key_reused_on_another_session_is_422_never_its_answer(api):
    open_session(api)
    open_session(api, key="OTHER")
    add_coffee(api)
    add_coffee(api, key="OTHER")
    api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos", "idempotency_key": "K"})
    response = api.post_json("/api/sessions/OTHER/commit/", {"channel_code": "pos", "idempotency_key": "K"})
    body = problem(response, 422, "idempotency_key_reused")
    assert "order_ref" not in body
    assert Session.objects.get(session_key="OTHER").state == "open"


def test_header_and_body_keys_that_differ_are_400(api):
    open_session(api)
    add_coffee(api)
    response = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos", "idempotency_key": "A"},
                             HTTP_IDEMPOTENCY_KEY="B")
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/idempotency_key"
    for bad in ("", "x" * 256, "tab\tkey", "ünicode"):
        response = api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos", "idempotency_key": bad})
        assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/idempotency_key"
    assert Order.objects.count() == 0


def test_modify_replays_and_applies_once(api):
    open_session(api)
    first = api.post_json(MODIFY, {**OPS, "idempotency_key": "M-1"})
    again = api.post_json(MODIFY.rstrip("/"), OPS, HTTP_IDEMPOTENCY_KEY="M-1")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content and first["ETag"] == again["ETag"]
    assert again["Idempotent-Replayed"] == "true"
    assert Session.objects.get().rev == 1
    # The keyed answer is the session as any read shows it.
    assert first.content == api.get("/api/sessions/SESS-001/?channel_code=pos").content
    other_body = api.post_json(MODIFY, {**OPS, "ops": [{"op": "merge_lines"}], "idempotency_key": "M-1"})
    problem(other_body, 422, "idempotency_key_reused")
    assert Session.objects.get().rev == 1


def test_key_order_in_the_body_does_not_change_the_fingerprint(api):
    open_session(api)
    api.post(MODIFY, b'{"channel_code": "pos", "ops": [{"op": "merge_lines"}], "idempotency_key": "Q"}',
             content_type="application/json")
    again = api.post(MODIFY, b'{"idempotency_key": "Q", "ops": [{"op": "merge_lines"}], "channel_code": "pos"}',
                     content_type="application/json")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"


def test_a_failed_request_frees_its_key(api):
    open_session(api)
    add_coffee(api)
    stale = api.post_json(MODIFY, {**OPS, "rev": 0, "idempotency_key": "F"})
    problem(stale, 412, "precondition_failed")
    assert not IdempotencyKey.objects.filter(key="F").exists()
    fixed = api.post_json(MODIFY, {**OPS, "rev": 1, "idempotency_key": "F"})
    assert fixed.status_code == 200 and not fixed.has_header("Idempotent-Replayed")


def test_create_replays_201_with_location_and_etag(api):
    body = {"channel_code": "pos", "handle_type": "table", "handle_ref": "7"}
    first = api.post_json("/api/sessions/", body, HTTP_IDEMPOTENCY_KEY="NEW-1")
    again = api.post_json("/api/sessions", body, HTTP_IDEMPOTENCY_KEY="NEW-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content == api.get(first["Location"]).content
    assert first["Location"] == again["Location"] and first["ETag"] == again["ETag"]
    assert again["Idempotent-Replayed"] == "true"
    assert Session.objects.count() == 1
    problem(api.post_json("/api/sessions/", {**body, "handle_ref": "8"}, HTTP_IDEMPOTENCY_KEY="NEW-1"),
            422, "idempotency_key_reused")


def test_keys_are_scoped_to_the_channel(api):
    first = api.post_json("/api/sessions/", {"channel_code": "pos"}, HTTP_IDEMPOTENCY_KEY="SAME")
    other = api.post_json("/api/sessions/", {"channel_code": "web"}, HTTP_IDEMPOTENCY_KEY="SAME")
    assert first.status_code == other.status_code == 201
    assert not other.has_header("Idempotent-Replayed")
    assert data(first)["session_key"] != data(other)["session_key"]


def test_an_expired_key_is_free_again(api, settings):
    open_session(api)
    settings.OMNIMAN = {**settings.OMNIMAN, "IDEMPOTENCY_TTL_SECONDS": -1}
    api.post_json(MODIFY, {**OPS, "idempotency_key": "E"})
    again = api.post_json(MODIFY, {**OPS, "idempotency_key": "E"})
    assert again.status_code == 200 and not again.has_header("Idempotent-Replayed")
    assert Session.objects.get().rev == 2
