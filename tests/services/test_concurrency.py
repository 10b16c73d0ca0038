"""Races on PostgreSQL: real threads, real row locks, each thread on its own connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction

from omniman.exceptions import AlreadyCommitted, PreconditionFailed
from omniman.models import IdempotencyKey, Order, OrderItem, TicketCounter
from omniman.services import commit_session, create_session, get_session, modify_session
from omniman.testing import add_line_op, make_channel
from tests.interleave import in_thread, wait_until_blocked

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60  # seconds: a deadlock fails the test instead of hanging the suite


def race(n, fn):
    """Run fn(i) in n threads released together; return each result or exception."""
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=TIMEOUT)
            return fn(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result(timeout=TIMEOUT) for f in [pool.submit(run, i) for i in range(n)]]


def open_session(key="S", channel="pos"):
    create_session(channel=channel, session_key=key)
    modify_session(channel=channel, session_key=key, ops=[add_line_op(), add_line_op("CAKE", unit_price_q=1200)])


def test_16_commits_with_one_key_make_one_order_and_everyone_gets_its_ref(pos):
    open_session()
    results = race(16, lambda i: commit_session(channel="pos", session_key="S", idempotency_key="COMMIT-1"))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    order = Order.objects.get()
    assert {r.order_ref for r in results} == {order.ref}
    assert sum(not r.replayed for r in results) == 1
    assert OrderItem.objects.count() == 2 and IdempotencyKey.objects.count() == 1


def test_16_commits_with_16_keys_make_one_order_the_others_already_committed(pos):
    open_session()
    results = race(16, lambda i: commit_session(channel="pos", session_key="S", idempotency_key=f"K{i}"))
    order = Order.objects.get()
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and wins[0].order_ref == order.ref
    assert len(losses) == 15
    assert all(isinstance(e, AlreadyCommitted) and e.order_ref == order.ref for e in losses), losses
    assert IdempotencyKey.objects.count() == 1


def test_8_modifies_with_the_same_rev_exactly_one_wins(pos):
    open_session()
    rev = get_session("pos", "S").rev
    results = race(8, lambda i: modify_session(
        channel="pos", session_key="S", expected_rev=rev, ops=[add_line_op(f"T{i}", unit_price_q=i)]))
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1
    assert all(isinstance(e, PreconditionFailed) and e.current_rev == rev + 1 for e in losses), losses
    session = get_session("pos", "S")
    assert session.rev == rev + 1 and len(session.items) == 3


def test_8_unconditional_modifies_all_apply_one_after_the_other(pos):
    open_session()
    results = race(8, lambda i: modify_session(channel="pos", session_key="S", ops=[add_line_op(f"T{i}")]))
    assert not [r for r in results if isinstance(r, Exception)]
    session = get_session("pos", "S")
    assert session.rev == 9 and len(session.items) == 10 and session.total_q == 500 * 9 + 1200
    assert sorted(r.rev for r in results) == list(range(2, 10))


def test_concurrent_commits_of_different_sessions_get_gap_free_stream_positions(pos):
    for n in range(12):
        open_session(f"S{n}")
    results = race(12, lambda i: commit_session(channel="pos", session_key=f"S{i}"))
    assert not [r for r in results if isinstance(r, Exception)]
    seqs = sorted(Order.objects.values_list("channel_seq", flat=True))
    assert seqs == list(range(1, 13))


def test_concurrent_commits_on_four_channels_get_gap_free_positions_in_each(pos):
    for code in ("c1", "c2", "c3"):
        make_channel(code)
    codes = ["pos", "c1", "c2", "c3"]
    for n in range(16):
        open_session(f"S{n}", channel=codes[n % 4])
    results = race(16, lambda i: commit_session(channel=codes[i % 4], session_key=f"S{i}"))
    assert not [r for r in results if isinstance(r, Exception)]
    for code in codes:
        seqs = sorted(Order.objects.filter(channel__code=code).values_list("channel_seq", flat=True))
        assert seqs == [1, 2, 3, 4], code


def test_32_racing_commits_on_one_channel_take_tickets_1_to_32(pos):
    """Each thread commits its own session with its own key, all released together:
    the counter row's lock hands out every number once, with no gap."""
    for n in range(32):
        open_session(f"S{n}")
    results = race(32, lambda i: commit_session(channel="pos", session_key=f"S{i}", idempotency_key=f"K{i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    numbers = list(Order.objects.values_list("number", flat=True))
    assert sorted(numbers) == list(range(1, 33))
    assert len(set(Order.objects.values_list("business_day", flat=True))) == 1
    assert TicketCounter.objects.get(channel=pos).last == 32


def test_racing_commits_that_roll_back_give_their_numbers_back(pos):
    """Every third commit fails in its caller's transaction after taking its number:
    the survivors still hold 1..N with no gap."""
    for n in range(24):
        open_session(f"S{n}")

    def commit_or_fail(i: int) -> str:
        with transaction.atomic():
            ref = commit_session(channel="pos", session_key=f"S{i}").order_ref
            if i % 3 == 0:
                raise RuntimeError("the caller's transaction fails")
        return ref

    results = race(24, commit_or_fail)
    assert sum(isinstance(r, RuntimeError) for r in results) == 8
    assert sorted(Order.objects.values_list("number", flat=True)) == list(range(1, 17))
    assert TicketCounter.objects.get(channel=pos).last == 16


def test_racing_commits_on_two_channels_number_each_channel_apart(pos):
    make_channel("bar")
    for n in range(16):
        open_session(f"S{n}")
        create_session(channel="bar", session_key=f"S{n}")
        modify_session(channel="bar", session_key=f"S{n}", ops=[add_line_op()])
    results = race(32, lambda i: commit_session(channel=("pos", "bar")[i % 2], session_key=f"S{i // 2}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    for code in ("pos", "bar"):
        numbers = Order.objects.filter(channel__code=code).values_list("number", flat=True)
        assert sorted(numbers) == list(range(1, 17)), code


@pytest.mark.parametrize("outer", [False, True], ids=["own transaction", "caller's transaction"])
def test_one_key_on_two_sessions_at_once_never_answers_with_the_other_order(pos, outer):
    """Inside a caller's transaction too: the loser's insert of the key waits for the
    winner's commit, then fails; its savepoint is rolled back and the retry finds the
    winner's key (another request: ``idempotency_key_reused``), not an IntegrityError."""
    from django.db import transaction

    def commit(i):
        if not outer:
            return commit_session(channel="pos", session_key="AB"[i % 2], idempotency_key="SHARED")
        with transaction.atomic():
            return commit_session(channel="pos", session_key="AB"[i % 2], idempotency_key="SHARED")

    open_session("A")
    open_session("B")
    results = race(8, commit)
    order = Order.objects.get()
    for i, r in enumerate(results):
        key = "AB"[i % 2]
        if isinstance(r, Exception):
            assert r.code == "idempotency_key_reused", r
            assert key != order.session_key
        else:
            assert r.order_ref == order.ref and key == order.session_key


def _order_matches_session(ref):
    """The order's items are the session's lines at the rev it was committed at."""
    from omniman.models import OrderEvent, Session

    session = Session.objects.get(order_ref=ref)
    order = Order.objects.get(ref=ref)
    items = [(i.line_id, i.sku, i.qty, i.line_total_q) for i in order.items.order_by("position")]
    lines = [(x["line_id"], x["sku"], Decimal(x["qty"]), x["line_total_q"]) for x in session.items]
    assert items == lines
    assert order.total_q == session.total_q == sum(x[3] for x in lines)
    assert OrderEvent.objects.get(order=order).payload["session_rev"] == session.rev
    return session


def test_a_commit_that_waits_for_a_modify_seals_the_modified_lines(pos):
    """The modify holds the row; the commit waits on it (seen in pg_stat_activity),
    then seals the lines the modify wrote. A commit that read the session without
    the row lock would seal the lines from before the modify."""
    from django.db import transaction

    open_session()
    with ThreadPoolExecutor(max_workers=1) as pool:
        with transaction.atomic():
            modify_session(channel="pos", session_key="S", ops=[
                {"op": "set_qty", "line_id": "L1", "qty": 4}, add_line_op("TEA", unit_price_q=300)])
            committing = in_thread(pool, lambda: commit_session(channel="pos", session_key="S"))
            wait_until_blocked(committing)
        result = committing.result(timeout=TIMEOUT)
    assert not isinstance(result, Exception), result
    session = _order_matches_session(result.order_ref)
    assert session.rev == 2 and [x["sku"] for x in session.items] == ["COFFEE", "CAKE", "TEA"]
    assert session.total_q == 4 * 500 + 1200 + 300


def test_a_modify_that_waits_for_a_commit_is_refused_and_changes_nothing(pos):
    """The commit holds the row; the modify waits on it, then finds the session
    committed: ``session_not_open``, and the order still equals the session."""
    from django.db import transaction

    from omniman.exceptions import SessionNotOpen

    open_session()
    with ThreadPoolExecutor(max_workers=1) as pool:
        with transaction.atomic():
            ref = commit_session(channel="pos", session_key="S").order_ref
            modifying = in_thread(pool, lambda: modify_session(
                channel="pos", session_key="S", ops=[add_line_op("TEA", unit_price_q=300)]))
            wait_until_blocked(modifying)
        result = modifying.result(timeout=TIMEOUT)
    assert isinstance(result, SessionNotOpen), result
    session = _order_matches_session(ref)
    assert session.rev == 1 and len(session.items) == 2


@pytest.mark.parametrize("load_items", [False, True])
def test_a_modify_that_waited_for_the_lock_reads_the_lines_the_other_one_wrote(pos, load_items):
    """The lines come with the locking read; after a wait, PostgreSQL returns the row
    as the other modify left it but the lines from the read's older snapshot, so the
    lines are read again (one more statement, asserted: the stale path was taken). A
    stale line would corrupt the subtotal."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from omniman.models import Session

    open_session()

    def second():
        with CaptureQueriesContext(connection) as queries:
            session = modify_session(channel="pos", session_key="S", load_items=load_items,
                                     ops=[{"op": "set_qty", "line_id": "L1", "qty": 5}])
        return session, [q["sql"] for q in queries.captured_queries]

    with ThreadPoolExecutor(max_workers=1) as pool:
        with transaction.atomic():
            modify_session(channel="pos", session_key="S", ops=[{"op": "set_qty", "line_id": "L1", "qty": 3}])
            waiting = in_thread(pool, second)
            wait_until_blocked(waiting)
        result = waiting.result(timeout=TIMEOUT)
    assert not isinstance(result, Exception), result
    session, sqls = result
    # BEGIN, the lock (with lines as of its snapshot), the lines again, the write, COMMIT.
    assert len(sqls) == 5 and "omniman_sessionline" in sqls[2] and "FOR UPDATE" not in sqls[2], sqls
    stored = Session.objects.get(session_key="S")
    assert [line["qty"] for line in stored.items] == ["5", "1"]
    assert stored.subtotal_q == stored.total_q == 5 * 500 + 1200 == session.total_q
    assert stored.rev == 3
