"""Exact statement counts per endpoint: independent of the op count, the line count
and the page's row count (token auth included)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.models import ChannelGrant
from omniman.services import commit_session, create_session, modify_session
from omniman.testing import make_channel
from tests.app.pricing import registered

from .conftest import data, open_session

# transaction=True: requests run in autocommit as in production, so the counts include
# the transaction's own statements (no test-wrapping savepoints).
pytestmark = pytest.mark.django_db(transaction=True)


def statements(fn) -> list[str]:
    """The statements of one request, up to its COMMIT (inline directives run after it)."""
    with CaptureQueriesContext(connection) as ctx:
        response = fn()
    assert response.status_code < 400, response.content
    sqls = [q["sql"] for q in ctx.captured_queries]
    return sqls[: sqls.index("COMMIT") + 1] if "COMMIT" in sqls else sqls


def count(fn) -> int:
    return len(statements(fn))


def add_ops(n: int, start: int = 0) -> list[dict]:
    return [{"op": "add_line", "sku": f"SKU{start + i}", "qty": 1, "unit_price_q": 100} for i in range(n)]


def test_modify_is_at_most_5_statements_whatever_the_ops_and_lines(api):
    open_session(api, key="SMALL")
    open_session(api, key="BIG")
    modify_session(channel="pos", session_key="BIG", ops=add_ops(100))
    modify_session(channel="pos", session_key="BIG", ops=add_ops(100, 100))
    small = count(lambda: api.post_json("/api/sessions/SMALL/modify/", {"channel_code": "pos", "ops": add_ops(1)}))
    many = count(lambda: api.post_json("/api/sessions/BIG/modify/", {"channel_code": "pos", "ops": add_ops(100, 200)}))
    # token + user, BEGIN, lock (with the lines, the channel and the grant), write,
    # COMMIT. The write is one statement on PostgreSQL (lines and row); SQLite, in
    # process, takes two (the lines, then the row).
    assert small == many == (5 if connection.vendor == "postgresql" else 6)


def test_a_priced_modify_is_as_cheap_as_a_plain_one(api, user):
    """Options, a custom op and adjustments (modifiers that read no line) cost no
    statement, with 1 or 100 ops, on a small session or one of 400 to 500 lines."""
    with registered():
        shop = make_channel("shop", pricing_policy="internal", modifiers=["tests.coupon", "tests.tax"])
        ChannelGrant.objects.create(user=user, channel=shop)
        open_session(api, channel="shop", key="SMALL")
        open_session(api, channel="shop", key="BIG")
        line = {"op": "add_line", "sku": "COFFEE", "qty": 1, "options": [{"code": "OAT"}, {"code": "SHOT"}]}
        for _ in range(4):  # 400 lines; the modifies below take it to 500
            modify_session(channel="shop", session_key="BIG", ops=[line] * 100)
        one = [line]
        many = [{"op": "apply_coupon", "code": "WELCOME10"}] + [line] * 99
        counts = [count(lambda key=key, ops=ops: api.post_json(f"/api/sessions/{key}/modify/",
                                                                 {"channel_code": "shop", "ops": ops}))
                  for key in ("SMALL", "BIG") for ops in (one, many)]
    assert counts == [5 if connection.vendor == "postgresql" else 6] * 4


def test_modify_on_a_checked_channel_adds_one_insert(api):
    open_session(api, channel="web", key="W")
    n = count(lambda: api.post_json("/api/sessions/W/modify/", {"channel_code": "web", "rev": 0, "ops": [
        {"op": "add_line", "sku": "COFFEE", "qty": 1}]}))
    assert n == (6 if connection.vendor == "postgresql" else 7)  # + one INSERT for the check directives


def test_session_detail_is_2_statements_and_304_too(api):
    # token + user, then the session with its channel, its lines and the grant.
    etag = open_session(api)["ETag"]
    assert count(lambda: api.get("/api/sessions/SESS-001/?channel_code=pos")) == 2
    assert count(lambda: api.get("/api/sessions/SESS-001/?channel_code=pos", HTTP_IF_NONE_MATCH=etag)) == 2


def fill(n: int, prefix: str) -> None:
    """``n`` committed orders of 3 lines, and ``n`` open sessions of 3 lines."""
    for i in range(n):
        for key in (f"{prefix}{i}", f"{prefix}{i}-open"):
            create_session(channel="pos", session_key=key)
            modify_session(channel="pos", session_key=key, ops=add_ops(3))
        commit_session(channel="pos", session_key=f"{prefix}{i}")


# Every list, exactly: token + user, then the page in one query (rows with their
# channel, a session's lines, the grant as a subquery); orders and the stream add one
# query for the items of the whole page. The stream first reads the head of each of
# the caller's channels (one query: an index lookup per channel). The same on both
# vendors.
START = "e30"  # the stream cursor that names no channel: every channel from its first order
LISTS = {
    "/api/sessions/": 2,
    "/api/sessions/?state=open&channel_code=pos&handle_type=t&handle_ref=r": 2,
    "/api/orders/": 3,
    "/api/orders/?channel_code=pos&status=new&created_after=2000-01-01T00:00:00Z": 3,
    "/api/orders/?number=1": 3,
    "/api/orders/?number=1&created_after=2000-01-01T00:00:00Z": 3,
    "/api/channels/": 2,
    "/api/orders/stream/": 4,
    f"/api/orders/stream/?after={START}": 4,
    f"/api/orders/stream/?after={START}&channel_code=pos": 4,
}


def test_every_list_is_an_exact_number_of_statements_for_1_and_100_rows(api):
    for rows, prefix in ((1, "A"), (99, "B")):
        fill(rows, prefix)
        assert len(data(api.get(f"/api/orders/stream/?after={START}"))["results"]) == rows + (prefix == "B")
        assert {url: count(lambda url=url: api.get(url)) for url in LISTS} == LISTS, rows


def test_the_stream_with_nothing_to_show_is_2_statements(api):
    # token + user, then the heads of the caller's channels: with nothing new in any,
    # no page is asked, with a cursor or without. A waiting read polls the heads alone.
    assert count(lambda: api.get("/api/orders/stream/")) == 2
    assert count(lambda: api.get(f"/api/orders/stream/?after={START}")) == 2
    fill(2, "Z")
    head = data(api.get("/api/orders/stream/"))["cursor"]
    assert count(lambda: api.get(f"/api/orders/stream/?after={head}")) == 2


def test_an_orders_events_are_3_statements_for_1_and_100_events(api):
    """token + user, the order (its grant a subquery), the page of events."""
    from omniman.models import Order, OrderEvent

    fill(1, "E")
    order = Order.objects.get()
    url = f"/api/orders/{order.ref}/events/"
    assert count(lambda: api.get(url)) == 3
    OrderEvent.objects.bulk_create(OrderEvent(order=order, type="note", payload={"n": n}) for n in range(99))
    assert len(data(api.get(f"{url}?page_size=100"))["results"]) == 100
    assert count(lambda: api.get(f"{url}?page_size=100")) == 3


def test_directive_list_is_2_statements_for_1_and_100_rows(operator):
    from omniman.models import Directive

    for n in (1, 99):
        Directive.objects.bulk_create(Directive(topic="t", payload={}, status="failed") for _ in range(n))
        # token + user (staff: no permission query), then the page.
        assert count(lambda: operator.get("/api/directives/")) == 2
        assert count(lambda: operator.get("/api/directives/?status=failed&topic=t")) == 2


@pytest.mark.parametrize("path", ["/api/sessions/", "/api/orders/", "/api/channels/", "/api/directives/"])
def test_every_page_costs_what_page_1_costs_forward_and_back(operator, path):
    from omniman.models import Directive

    fill(3, "K")  # 3 orders, 6 sessions
    Directive.objects.bulk_create(Directive(topic="t", payload={}, status="failed") for _ in range(4))
    expected = {"/api/sessions/": 2, "/api/orders/": 3, "/api/channels/": 2, "/api/directives/": 2}[path]
    url, pages = f"{path}?page_size=1", []
    while url:
        assert count(lambda url=url: operator.get(url)) == expected, (url, len(pages))
        pages.append(url)
        url = data(operator.get(url))["next"]
    assert len(pages) >= 2  # channels: pos and web
    back = data(operator.get(pages[-1]))["previous"]
    assert count(lambda: operator.get(back)) == expected


def test_commit_statements_do_not_grow_with_lines(api):
    # SQLite splits a bulk INSERT every 999 parameters (124 order items); 100 lines fit one.
    for key, n in (("ONE", 1), ("MANY", 100)):
        open_session(api, key=key)
        modify_session(channel="pos", session_key=key, ops=add_ops(n))
    one = count(lambda: api.post_json("/api/sessions/ONE/commit/", {"channel_code": "pos", "idempotency_key": "1"}))
    many = count(lambda: api.post_json("/api/sessions/MANY/commit/", {"channel_code": "pos", "idempotency_key": "2"}))
    assert one == many


def test_commit_and_transition_read_no_channel_apart(api):
    open_session(api, key="ONE")
    modify_session(channel="pos", session_key="ONE", ops=add_ops(2))
    # token + user, BEGIN, lock (with the channel and the grant), key lookup, order,
    # items, event, key record, session, then on PostgreSQL the advisory lock and the
    # stream position with the ticket number (one UPDATE), on SQLite the ticket number
    # and the stream position; COMMIT.
    n = count(lambda: api.post_json("/api/sessions/ONE/commit/", {"channel_code": "pos", "idempotency_key": "1"}))
    assert n == 12
    ref = data(api.get("/api/orders/"))["results"][0]["ref"]
    # token + user, BEGIN, lock (with the channel and the grant), update, event, COMMIT.
    assert count(lambda: api.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"})) == 6


def test_directive_metrics_are_4_statements_however_many_directives(operator):
    from omniman.models import Directive

    few = count(lambda: operator.get("/api/directives/metrics/"))
    Directive.objects.bulk_create(
        Directive(topic="t", payload={}, status=status) for status in ["queued", "running", "done", "failed"] * 50
    )
    many = count(lambda: operator.get("/api/directives/metrics/"))
    # token + user, then counts by status, the oldest queued, the expired leases.
    assert few == many == 4


def test_a_one_call_import_is_an_exact_count_for_1_and_50_lines(api, user):
    """The import costs what a keyed create, a modify and a commit cost together, less
    the two extra requests' authentication, locks and key records, whatever its lines."""
    ifood = make_channel("ifood", external_ref_path="external_ref")
    ChannelGrant.objects.create(user=user, channel=ifood)

    def one_call(channel: str, n: int, key: str) -> int:
        body = {"channel_code": channel, "ops": add_ops(n), "commit": True, "idempotency_key": key,
                "data": {"external_ref": key}}
        return count(lambda: api.post_json("/api/sessions/", body))

    pos = [one_call("pos", n, f"P{n}") for n in (1, 50)]
    marketplace = [one_call("ifood", n, f"I{n}") for n in (1, 50)]
    # token + user, channel, BEGIN, [advisory lock on the key,] key lookup, session
    # insert (a server-made key: no savepoint), lines and row (two on SQLite), order,
    # items, event, key record, session, stream advisory lock and position with the
    # ticket number (SQLite: ticket number, position), COMMIT; + the external_ref lookup
    # when the channel takes one from the data.
    assert pos == [15, 15]
    assert marketplace == [n + 1 for n in pos]


def test_the_same_order_in_three_calls_costs_more(api):
    """create + modify + commit, each keyed, as an importer without the one call does."""
    create = count(lambda: api.post_json("/api/sessions/", {"channel_code": "pos", "session_key": "T",
                                                              "idempotency_key": "C"}))
    modify = count(lambda: api.post_json("/api/sessions/T/modify/", {"channel_code": "pos", "ops": add_ops(1),
                                                                      "idempotency_key": "M"}))
    commit = count(lambda: api.post_json("/api/sessions/T/commit/", {"channel_code": "pos",
                                                                      "idempotency_key": "K"}))
    # The create names its session_key: its insert takes a savepoint (SessionExists).
    assert (create, modify, commit) == ((10, 7, 12) if connection.vendor == "postgresql" else (9, 8, 12))


def test_the_hot_requests_compile_no_sql_once_warm(api, monkeypatch):
    """A session read, a 304 and a modify run prepared statements only (the token's,
    the session's read or lock, the raw write): building and compiling a queryset per
    request was most of their Python (issue 19)."""
    from django.db.models.sql.compiler import SQLCompiler

    open_session(api, key="HOT")
    body = {"channel_code": "pos", "ops": add_ops(1)}
    reads = lambda **headers: api.get("/api/sessions/HOT/?channel_code=pos", **headers)  # noqa: E731
    writes = {
        "modify": lambda: api.post_json("/api/sessions/HOT/modify/", body),
        "set_qty": lambda: api.post_json("/api/sessions/HOT/modify/", {"channel_code": "pos", "ops": [
            {"op": "set_qty", "line_id": "L1", "qty": 2}]}),
    }
    for make in writes.values():
        make()  # warm: each shape is compiled once per process
    tag = reads()["ETag"]
    requests = {"get": reads, "get_304": lambda: reads(HTTP_IF_NONE_MATCH=tag), **writes}
    requests["get_304"]()
    compiled = []
    original = SQLCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled.append(self.query.model.__name__ if self.query.model else "?")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", as_sql)
    for name, make in requests.items():
        response = make()
        assert response.status_code == (304 if name == "get_304" else 200), response.content
        assert compiled == [], (name, compiled)
