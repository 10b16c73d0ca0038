"""Races through the HTTP layer on PostgreSQL: threads, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from omniman.models import Order, Session
from omniman.services import create_session, modify_session
from omniman.testing import add_line_op
from omniman_api.conditional import etag as etag_of

from .conftest import client_for, data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released together; the answers in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def clients(user):
    return [client_for(user) for _ in range(16)]


def test_16_concurrent_commits_with_one_key_make_one_order(clients, pos):
    create_session(channel="pos", session_key="SESS-001")
    modify_session(channel="pos", session_key="SESS-001", ops=[add_line_op()])
    body = {"channel_code": "pos", "idempotency_key": "COMMIT-1"}
    answers = race(16, lambda i: clients[i].post_json("/api/sessions/SESS-001/commit/", body))
    assert all(not isinstance(a, Exception) for a in answers), answers
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert sum(a.has_header("Idempotent-Replayed") for a in answers) == 15
    assert Order.objects.count() == 1


def test_concurrent_modifies_with_one_if_match_one_wins(clients, pos):
    create_session(channel="pos", session_key="SESS-001")
    etag = etag_of(Session.objects.get())
    body = {"channel_code": "pos", "ops": [add_line_op()]}
    answers = race(8, lambda i: clients[i].post_json("/api/sessions/SESS-001/modify/", body, HTTP_IF_MATCH=etag))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [412] * 7
    assert Session.objects.get().rev == 1
    losers = [a for a in answers if a.status_code == 412]
    assert {data(a)["current_rev"] for a in losers} == {1}


def test_concurrent_creates_with_one_key_make_one_session(clients, pos):
    body = {"channel_code": "pos", "handle_type": "table", "handle_ref": "9"}
    answers = race(8, lambda i: clients[i].post_json("/api/sessions/", body, HTTP_IDEMPOTENCY_KEY="NEW"))
    assert {a.status_code for a in answers} == {201}, [a.content for a in answers]
    assert len({a.content for a in answers}) == 1
    assert Session.objects.count() == 1


def test_one_key_on_two_sessions_at_once_never_crosses(clients, pos):
    for key in ("A", "B"):
        create_session(channel="pos", session_key=key)
        modify_session(channel="pos", session_key=key, ops=[add_line_op()])

    def commit(i: int) -> Any:
        key = "A" if i % 2 else "B"
        return clients[i].post_json(f"/api/sessions/{key}/commit/", {"channel_code": "pos", "idempotency_key": "K"})

    answers = race(8, commit)
    assert {a.status_code for a in answers} <= {201, 422}, [a.content for a in answers]
    winners = {data(a)["session_key"] for a in answers if a.status_code == 201}
    assert len(winners) == 1 and Order.objects.count() == 1


def test_a_stream_follower_sees_every_order_once_while_commits_race(clients, pos, user):
    follower = client_for(user)
    cursor = data(follower.get("/api/orders/stream/"))["cursor"]
    n = 24
    for i in range(n):
        create_session(channel="pos", session_key=f"R{i}")
        modify_session(channel="pos", session_key=f"R{i}", ops=[add_line_op()])
    seen: list[str] = []
    done = threading.Event()

    def follow() -> None:
        nonlocal cursor
        try:
            while True:
                finished = done.is_set()
                page = data(follower.get(f"/api/orders/stream/?after={cursor}&timeout=0.2"))
                seen.extend(o["ref"] for o in page["results"])
                cursor = page["cursor"]
                if finished and not page["results"]:
                    return
        finally:
            connection.close()

    reader = threading.Thread(target=follow)
    reader.start()
    answers = race(8, lambda i: [
        clients[i].post_json(f"/api/sessions/R{k}/commit/", {"channel_code": "pos"}).status_code
        for k in range(i, n, 8)
    ])
    done.set()
    reader.join(30)
    assert all(s == 201 for a in answers for s in a), answers
    refs = set(Order.objects.values_list("ref", flat=True))
    assert len(refs) == n
    assert sorted(seen) == sorted(refs)  # every order, each exactly once


def test_a_follower_of_several_channels_sees_every_order_once_while_commits_race_on_each(
    clients, pos, user, monkeypatch
):
    """Commits race on four channels, each channel handing out its own positions; one
    follower reads all four, three orders a page (so pages end between orders of one
    channel and another's), and sees every order exactly once, each channel's in its
    commit order."""
    from omniman.models import ChannelGrant
    from omniman.testing import make_channel
    from omniman_api import views

    monkeypatch.setattr(views, "STREAM_PAGE", 3)
    codes = ["pos", "bar", "web2", "app"]
    for code in codes[1:]:
        ChannelGrant.objects.create(user=user, channel=make_channel(code))
    follower = client_for(user)
    cursor = data(follower.get("/api/orders/stream/"))["cursor"]
    n = 32
    for i in range(n):
        create_session(channel=codes[i % 4], session_key=f"R{i}")
        modify_session(channel=codes[i % 4], session_key=f"R{i}", ops=[add_line_op()])
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def follow() -> None:
        nonlocal cursor
        try:
            while True:
                finished = done.is_set()
                page = data(follower.get(f"/api/orders/stream/?after={cursor}&timeout=0.1"))
                seen.extend((o["channel_code"], o["ref"]) for o in page["results"])
                cursor = page["cursor"]
                if finished and not page["results"]:
                    return
        finally:
            connection.close()

    reader = threading.Thread(target=follow)
    reader.start()
    answers = race(8, lambda i: [
        clients[i].post_json(f"/api/sessions/R{k}/commit/", {"channel_code": codes[k % 4]}).status_code
        for k in range(i, n, 8)
    ])
    done.set()
    reader.join(30)
    assert all(s == 201 for a in answers for s in a), answers
    assert sorted(ref for _, ref in seen) == sorted(Order.objects.values_list("ref", flat=True))
    assert len(seen) == n  # every order, each exactly once
    for code in codes:
        by_position = list(Order.objects.filter(channel__code=code).order_by("channel_seq").values_list("ref", flat=True))
        assert [ref for c, ref in seen if c == code] == by_position, code
        assert len(by_position) == n // 4


def test_32_racing_http_commits_on_one_channel_take_tickets_1_to_32(pos, user):
    """Each client commits its own session with its own key; the orders, read back
    over HTTP, hold the numbers 1 to 32 once each."""
    n = 32
    clients = [client_for(user) for _ in range(n)]
    for i in range(n):
        create_session(channel="pos", session_key=f"T{i}")
        modify_session(channel="pos", session_key=f"T{i}", ops=[add_line_op()])
    answers = race(n, lambda i: clients[i].post_json(
        f"/api/sessions/T{i}/commit/", {"channel_code": "pos", "idempotency_key": f"K{i}"}
    ))
    assert [getattr(a, "status_code", a) for a in answers] == [201] * n
    listed = data(clients[0].get("/api/orders/?page_size=100"))["results"]
    assert sorted(o["number"] for o in listed) == list(range(1, n + 1))
    assert [o["ref"] for o in data(clients[0].get("/api/orders/?number=32"))["results"]] == [
        o["ref"] for o in listed if o["number"] == 32
    ]


def test_an_unreachable_database_is_503_with_retry_after(api, anon):
    from .conftest import problem

    settings_dict = connection.settings_dict
    saved = (settings_dict["HOST"], settings_dict["PORT"])
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", 8199  # nothing listens there
    try:
        for response in (anon.get("/api/health/"), api.get("/api/sessions/")):
            problem(response, 503, "unavailable")
            assert int(response["Retry-After"]) > 0
    finally:
        connection.close()
        settings_dict["HOST"], settings_dict["PORT"] = saved
    assert anon.get("/api/health/").status_code == 200


def test_one_marketplace_order_imported_by_16_requests_with_16_keys_is_one_order(clients, user):
    """The unique (channel, external_ref) index is the arbiter: one request makes the
    order, every other answers 409 external_ref_exists naming it, and nothing else is
    left behind (no second session, no key recorded for a refused request)."""
    from omniman.models import ChannelGrant, IdempotencyKey
    from omniman.testing import make_channel

    ifood = make_channel("ifood", external_ref_path="external_ref")
    ChannelGrant.objects.create(user=user, channel=ifood)
    ops = [{"op": "add_line", "sku": "COFFEE", "qty": 2, "unit_price_q": 500}]

    def post(i: int) -> Any:
        return clients[i].post_json("/api/sessions/", {
            "channel_code": "ifood", "data": {"external_ref": "IFOOD-777"}, "ops": ops, "commit": True,
            "idempotency_key": f"KEY-{i}",
        })

    answers = race(16, post)
    assert all(not isinstance(a, Exception) for a in answers), answers
    assert sorted(a.status_code for a in answers) == [201] + [409] * 15
    order = Order.objects.get()
    assert order.external_ref == "IFOOD-777"
    made = next(a for a in answers if a.status_code == 201)
    assert data(made)["order_ref"] == order.ref
    for refused in (a for a in answers if a.status_code == 409):
        body = data(refused)
        assert (body["code"], body["order_ref"], body["external_ref"]) == ("external_ref_exists", order.ref, "IFOOD-777")
    assert Session.objects.count() == 1 and IdempotencyKey.objects.count() == 1
