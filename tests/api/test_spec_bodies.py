"""The three request bodies SPEC quotes, byte for byte, as existing POS clients send them."""

from __future__ import annotations

import pytest

from omniman.models import Order

from .conftest import data


@pytest.mark.django_db
def test_spec_bodies_byte_for_byte(api):
    created = api.post("/api/sessions/", b'{"channel_code": "pos"}', content_type="application/json")
    assert created.status_code == 201
    assert data(created)["session_key"]
    assert api.post_json("/api/sessions/", {"channel_code": "pos", "session_key": "SESS-001"}).status_code == 201

    modified = api.post(
        "/api/sessions/SESS-001/modify/",
        b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]}',
        content_type="application/json",
    )
    assert modified.status_code == 200, modified.content
    body = data(modified)
    assert body["rev"] == 1 and body["total_q"] == 500
    assert body["items"][0]["qty"] == "1" and body["items"][0]["line_total_q"] == 500

    committed = api.post(
        "/api/sessions/SESS-001/commit/",
        b'{"channel_code": "pos", "idempotency_key": "COMMIT-1"}',
        content_type="application/json",
    )
    assert committed.status_code == 201, committed.content
    order = data(committed)
    assert set(order) == {"order_ref", "status", "total_q", "currency", "items_count", "session_key", "channel_code"}
    assert order["total_q"] == 500 and order["items_count"] == 1 and order["status"] == "new"
    assert order["session_key"] == "SESS-001" and order["channel_code"] == "pos"
    assert Order.objects.get().ref == order["order_ref"]
