"""Exact statement counts on PostgreSQL: nothing per op, nothing per line."""

from __future__ import annotations

import pytest

from omniman.services import (
    apply_check_result,
    commit_session,
    create_session,
    get_session,
    modify_session,
    transition_order,
)
from omniman.testing import add_line_op, make_channel
from tests.app.pricing import registered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def session_with_lines(channel, key, n, **kw):
    create_session(channel=channel, session_key=key)
    for start in range(0, n, 100):
        modify_session(
            channel=channel, session_key=key,
            ops=[add_line_op(f"SKU{i}", qty=1, unit_price_q=100 + i, **kw) for i in range(start, min(n, start + 100))],
        )


def set_qty_ops(count):
    return [{"op": "set_qty", "line_id": "L1", "qty": 1 + n % 3} for n in range(count)]


# SAVEPOINT, SELECT ... FOR UPDATE OF session (with its channel and the lines the ops
# name), one write (the lines' upsert and delete ride as CTEs of the session's UPDATE),
# RELEASE SAVEPOINT.
MODIFY_QUERIES = 4


@pytest.mark.parametrize(("lines", "ops"), [(1, 1), (1, 100), (500, 1), (500, 100)])
def test_modify_costs_the_same_whatever_the_ops_and_lines(pos, django_assert_num_queries, lines, ops):
    session_with_lines("pos", "S", lines)
    with django_assert_num_queries(MODIFY_QUERIES) as captured:
        modify_session(channel="pos", session_key="S", ops=set_qty_ops(ops))
    lock = captured.captured_queries[1]["sql"]
    assert lock.endswith('FOR UPDATE OF "omniman_session"'), lock  # never the channel row


@pytest.mark.parametrize("lines", [3, 500])
@pytest.mark.parametrize("load_items", [False, True])
def test_every_kind_of_op_together_costs_the_same(pos, django_assert_num_queries, lines, load_items):
    session_with_lines("pos", "S", lines)
    ops = [{"op": "remove_line", "line_id": f"L{lines}"},
           {"op": "remove_line", "line_id": "L1"}, {"op": "set_qty", "line_id": "L2", "qty": 3},
           add_line_op("NEW", unit_price_q=1), add_line_op("AGAIN", unit_price_q=2, line_id="L1"),
           {"op": "replace_sku", "line_id": "L2", "sku": "X"}, {"op": "set_data", "path": "a", "value": 1}]
    with django_assert_num_queries(MODIFY_QUERIES) as captured:
        s = modify_session(channel="pos", session_key="S", ops=ops, load_items=load_items)
    lock = captured.captured_queries[1]["sql"]
    assert ("= ANY(" in lock) != load_items  # only the named lines, unless every one is asked for
    assert s.line_count == lines
    if load_items:
        assert len(s.items) == lines  # no further query


@pytest.mark.parametrize("client_id", ["L301", "L400"])
def test_a_client_id_of_the_server_form_before_server_made_ids_reads_no_more(pos, django_assert_num_queries,
                                                                            client_id):
    """The server-made ids after a client's ``L{n}`` are known before the lock: the lock's
    query brings them, and no second read of every line follows."""
    session_with_lines("pos", "S", 300)
    with django_assert_num_queries(MODIFY_QUERIES):
        s = modify_session(channel="pos", session_key="S", ops=[
            add_line_op("A", unit_price_q=1, line_id=client_id), add_line_op("B", unit_price_q=1),
            add_line_op("C", unit_price_q=1),
        ])
    n = max(int(client_id[1:]), 300)
    assert [line["line_id"] for line in get_session("pos", "S").items][-3:] == [client_id, f"L{n + 1}", f"L{n + 2}"]
    assert s.next_line == n + 3


@pytest.fixture
def shop(db):
    """Internal pricing with options, a coupon and a tax (modifiers that read no line),
    and the ``apply_coupon`` custom op."""
    with registered():
        yield make_channel("shop", pricing_policy="internal", modifiers=["tests.coupon", "tests.tax"])


def priced_ops(count):
    """``count`` ops: the custom op, then options set on lines (or one such op alone)."""
    set_options = {"op": "set_options", "line_id": "L1", "options": [{"code": "SOY"}, {"code": "SHOT", "qty": 2}]}
    if count == 1:
        return [set_options]
    return [{"op": "apply_coupon", "code": "WELCOME10"}] + [
        {**set_options, "options": [{"code": "SOY"}] if n % 2 else []} for n in range(count - 1)]


@pytest.mark.parametrize(("lines", "ops"), [(1, 1), (1, 100), (500, 1), (500, 100)])
def test_a_priced_modify_costs_the_same_whatever_the_ops_and_lines(shop, django_assert_num_queries, lines, ops):
    """Options, adjustments and a custom op add no statement, and read only the lines
    the ops name."""
    create_session(channel="shop", session_key="S")
    for start in range(0, lines, 100):
        modify_session(channel="shop", session_key="S", ops=[
            {"op": "add_line", "sku": "COFFEE", "qty": 1, "options": [{"code": "OAT"}]}
            for _ in range(start, min(lines, start + 100))])
    with django_assert_num_queries(MODIFY_QUERIES) as captured:
        s = modify_session(channel="shop", session_key="S", ops=priced_ops(ops))
    assert "= ANY(" in captured.captured_queries[1]["sql"]  # only the named lines
    assert s.pricing["taxes_q"] > 0 and s.line_count == lines


@pytest.mark.parametrize("adds", [1, 100])
def test_adding_lines_costs_the_same_whatever_their_number(pos, django_assert_num_queries, adds):
    session_with_lines("pos", "S", 300)
    with django_assert_num_queries(MODIFY_QUERIES):
        modify_session(channel="pos", session_key="S",
                       ops=[add_line_op(f"N{i}", unit_price_q=1) for i in range(adds)])


@pytest.mark.parametrize("lines", [1, 500])
def test_modify_with_a_check_adds_one_directive_insert(web, django_assert_num_queries, lines):
    create_session(channel="web", session_key="S")
    rev = 0
    for start in range(0, lines, 100):
        modify_session(channel="web", session_key="S", expected_rev=rev,
                       ops=[add_line_op("COFFEE", unit_price_q=None, line_id=f"X{i}")
                            for i in range(start, min(lines, start + 100))])
        rev += 1
    with django_assert_num_queries(MODIFY_QUERIES + 1):
        modify_session(channel="web", session_key="S", ops=[{"op": "set_qty", "line_id": "X0", "qty": 2}],
                       expected_rev=rev)


# SAVEPOINT, lock session, idempotency lookup, INSERT order, INSERT items (one, bulk),
# INSERT event, INSERT idempotency key, UPDATE session, advisory lock, UPDATE channel_seq
# and number (the counter's upsert in its WITH), RELEASE SAVEPOINT.
COMMIT_QUERIES = 11


@pytest.mark.parametrize("lines", [1, 200])
def test_commit_costs_the_same_whatever_the_lines(pos, django_assert_num_queries, lines):
    session_with_lines("pos", "S", lines)
    with django_assert_num_queries(COMMIT_QUERIES):
        result = commit_session(channel="pos", session_key="S", idempotency_key="K")
    assert result.body["items_count"] == lines


@pytest.mark.parametrize("lines", [1, 200])
def test_commit_with_post_commit_directives_adds_one_insert(web, django_assert_num_queries, lines):
    from omniman.testing import make_channel

    make_channel("shop", post_commit_directives=["payment.capture", "notification.order_committed"])
    session_with_lines("shop", "S", lines)
    with django_assert_num_queries(COMMIT_QUERIES - 2 + 1):  # no key: no lookup, no record
        commit_session(channel="shop", session_key="S")


def test_a_replayed_commit_is_three_statements_and_a_lock(pos, django_assert_num_queries):
    session_with_lines("pos", "S", 10)
    commit_session(channel="pos", session_key="S", idempotency_key="K")
    with django_assert_num_queries(4):  # SAVEPOINT, lock, lookup, RELEASE
        assert commit_session(channel="pos", session_key="S", idempotency_key="K").replayed


def test_loading_a_session_with_its_channel_is_one_query(pos, django_assert_num_queries):
    session_with_lines("pos", "S", 50)
    with django_assert_num_queries(1):
        session = get_session("pos", "S")
        assert session.channel.conf.pricing_policy == "external"
        assert len(session.items) == 50


def test_check_result_and_transition_are_constant(web, pos, django_assert_num_queries):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=0)
    with django_assert_num_queries(4):  # SAVEPOINT, lock, UPDATE, RELEASE
        apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True)
    session_with_lines("pos", "P", 3)
    ref = commit_session(channel="pos", session_key="P").order_ref
    with django_assert_num_queries(5):  # SAVEPOINT, lock order, UPDATE, INSERT event, RELEASE
        transition_order(ref=ref, to="preparing")
