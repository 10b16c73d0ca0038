from __future__ import annotations

import pytest
from django.utils import timezone

from omniman import extensions
from omniman.models import Order
from omniman_api.conditional import etag as etag_of

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db


def commit(api, key: str, channel: str = "pos") -> str:
    open_session(api, channel=channel, key=key)
    add_coffee(api, key=key, channel=channel)
    response = api.post_json(f"/api/sessions/{key}/commit/", {"channel_code": channel})
    assert response.status_code == 201, response.content
    return data(response)["order_ref"]


def test_order_detail_has_items_and_etag(api):
    ref = commit(api, "A")
    response = api.get(f"/api/orders/{ref}/")
    body = data(response)
    assert response["ETag"] == etag_of(Order.objects.get())
    # The kernel's fields, and those of the installed order extensions (payments).
    added = {name for ext in extensions.extensions() for name in ext.field_schemas}
    assert set(body) == {"ref", "channel_code", "session_key", "status", "items", "data", "pricing", "total_q",
                         "currency", "external_ref", "number", "business_day", "placed_at", "created_at",
                         "updated_at"} | added
    assert body["items"] == [{"line_id": "L1", "sku": "COFFEE", "qty": "1", "unit_price_q": 500,
                              "line_total_q": 500, "meta": {}, "options": [], "adjustments": []}]
    problem(api.get("/api/orders/NOPE/"), 404, "not_found")


def test_transition_along_the_flow_only(api):
    ref = commit(api, "A")
    response = api.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"})
    assert data(response)["status"] == "preparing"
    problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": "new"}), 409, "transition_not_allowed")
    problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": 5}), 400, "validation_error")
    problem(api.post_json(f"/api/orders/{ref}/transition/", {}), 400, "validation_error")
    assert Order.objects.get().status == "preparing"
    assert Order.objects.get().events.count() == 2


def test_list_filters(api):
    a = commit(api, "A")
    b = commit(api, "B")
    api.post_json(f"/api/orders/{b}/transition/", {"to": "cancelled"})

    def refs(query: str) -> list[str]:
        response = api.get("/api/orders/" + query)
        assert response.status_code == 200, response.content
        return [o["ref"] for o in data(response)["results"]]

    assert refs("") == [b, a]
    assert refs("?status=cancelled") == [b]
    assert refs("?channel_code=pos&status=new") == [a]
    assert refs("?channel_code=web") == []
    created = Order.objects.get(ref=a).created_at
    assert refs("?created_after=" + (created - timezone.timedelta(seconds=1)).isoformat().replace("+", "%2B")) \
        == [b, a]
    assert refs("?created_before=" + created.isoformat().replace("+", "%2B")) == []
    assert refs("?created_before=2000-01-01T00:00:00Z") == []
    assert refs("?created_after=2000-01-01T00:00:00Z") == [b, a]


def test_stream_follows_commit_order_with_a_cursor(api):
    first = data(api.get("/api/orders/stream/"))
    assert first["results"] == []
    a = commit(api, "A")
    b = commit(api, "B")
    page = data(api.get(f"/api/orders/stream/?after={first['cursor']}"))
    assert [o["ref"] for o in page["results"]] == [a, b]
    assert page["results"][0]["items"][0]["sku"] == "COFFEE"
    empty = data(api.get(f"/api/orders/stream/?after={page['cursor']}"))
    assert empty == {"results": [], "cursor": page["cursor"]}
    c = commit(api, "C")
    assert [o["ref"] for o in data(api.get(f"/api/orders/stream/?after={page['cursor']}"))["results"]] == [c]
    # Without a cursor: the latest orders, oldest first.
    assert [o["ref"] for o in data(api.get("/api/orders/stream/"))["results"]] == [a, b, c]


def test_stream_waits_up_to_the_timeout_bounded_by_the_setting(api, settings):
    import time

    cursor = data(api.get("/api/orders/stream/"))["cursor"]
    settings.OMNIMAN = {**settings.OMNIMAN, "STREAM_MAX_TIMEOUT_SECONDS": 0.3}
    started = time.monotonic()
    response = api.get(f"/api/orders/stream/?after={cursor}&timeout=30")
    assert response.status_code == 200 and data(response)["results"] == []
    assert 0.25 < time.monotonic() - started < 2
    problem(api.get(f"/api/orders/stream/?after={cursor}&timeout=-1"), 400, "validation_error")
    problem(api.get(f"/api/orders/stream/?after={cursor}&timeout=nan"), 400, "validation_error")
    body = problem(api.get("/api/orders/stream/?after=garbage"), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/after"


def test_an_orders_events_oldest_first_page_by_page(api):
    ref = commit(api, "A")
    for to in ("preparing", "ready"):
        assert api.post_json(f"/api/orders/{ref}/transition/", {"to": to}).status_code == 200
    body = data(api.get(f"/api/orders/{ref}/events/"))
    assert [e["type"] for e in body["results"]] == ["order.committed", "order.status_changed", "order.status_changed"]
    first = body["results"][0]
    assert set(first) == {"id", "type", "actor", "payload", "created_at"}
    assert first["actor"] == "clerk" and first["payload"]["status"] == "new"
    assert body["next"] is None and body["previous"] is None
    # Two by two: oldest first, forward and back.
    one = data(api.get(f"/api/orders/{ref}/events/?page_size=2"))
    assert [e["id"] for e in one["results"]] == [e["id"] for e in body["results"][:2]]
    two = data(api.get(one["next"]))
    assert [e["id"] for e in two["results"]] == [body["results"][2]["id"]] and two["next"] is None
    back = data(api.get(two["previous"]))
    assert [e["id"] for e in back["results"]] == [e["id"] for e in body["results"][:2]]
    # Events of another order never mix in; an unknown order is 404.
    other = commit(api, "B")
    assert [e["type"] for e in data(api.get(f"/api/orders/{other}/events/"))["results"]] == ["order.committed"]
    problem(api.get("/api/orders/POS-NOPE0-NOPE0/events/"), 404, "not_found")
    problem(api.get(f"/api/orders/{ref}/events/?cursor=x1"), 400, "validation_error")
    problem(api.get(f"/api/orders/{ref}/events/?page_size=0"), 400, "validation_error")


def test_an_old_stream_cursor_is_refused_with_a_clear_error(api):
    body = problem(api.get("/api/orders/stream/?after=q42"), 400, "validation_error")
    error = body["errors"][0]
    assert error["pointer"] == "/after" and error["code"] == "old_cursor"
    assert "without after" in error["detail"]
    for raw in ("e30", "eyJwb3MiOjB9"):  # {} and {"pos":0}
        assert api.get(f"/api/orders/stream/?after={raw}").status_code == 200
    for raw in ("W10", "eyJwb3MiOi0xfQ", "eyJwb3MiOiIxIn0", "eyIgIjoxfQ"):  # [], {"pos":-1}, {"pos":"1"}, {" ":1}
        assert problem(api.get(f"/api/orders/stream/?after={raw}"), 400, "validation_error")["errors"][0][
            "code"] == "invalid"


def test_the_stream_follows_several_channels_each_in_its_own_order(api, user):
    from omniman.models import ChannelGrant
    from omniman.testing import make_channel

    ChannelGrant.objects.create(user=user, channel=make_channel("bar"))
    start = data(api.get("/api/orders/stream/"))["cursor"]
    refs = [commit(api, f"K{n}", channel=code) for n, code in enumerate(["pos", "bar", "pos", "bar", "bar"])]
    page = data(api.get(f"/api/orders/stream/?after={start}"))
    got = [o["ref"] for o in page["results"]]
    assert sorted(got) == sorted(refs)
    # Each channel in its commit order.
    for code in ("pos", "bar"):
        mine = [o["ref"] for o in page["results"] if o["channel_code"] == code]
        assert mine == [r for r in refs if r.startswith(code.upper())]
    # Following one channel keeps the other's position.
    c = commit(api, "K9", channel="bar")
    d = commit(api, "K10", channel="pos")
    only_pos = data(api.get(f"/api/orders/stream/?after={page['cursor']}&channel_code=pos"))
    assert [o["ref"] for o in only_pos["results"]] == [d]
    assert [o["ref"] for o in data(api.get(f"/api/orders/stream/?after={only_pos['cursor']}"))["results"]] == [c]
