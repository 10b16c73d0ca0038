"""Races on PostgreSQL: real threads, real row locks, each thread on its own connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from omniman.exceptions import AlreadyCommitted, PreconditionFailed
from omniman.models import IdempotencyKey, Order, OrderItem
from omniman.services import commit_session, create_session, get_session, modify_session
from omniman.testing import add_line_op

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


def open_session(key="S"):
    create_session(channel="pos", session_key=key)
    modify_session(channel="pos", session_key=key, ops=[add_line_op(), add_line_op("CAKE", unit_price_q=1200)])


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
    seqs = sorted(Order.objects.values_list("stream_seq", flat=True))
    assert seqs == list(range(1, 13))


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


@pytest.mark.parametrize("load_items", [False, True])
def test_a_modify_that_waited_for_the_lock_reads_the_lines_the_other_one_wrote(pos, load_items):
    """The lines come with the locking read; after a wait, that read's snapshot predates
    the write it waited for, so the lines are read again: a stale line would corrupt
    the subtotal."""
    from django.db import transaction

    from omniman.models import Session

    open_session()
    holding, release = threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            modify_session(channel="pos", session_key="S", ops=[{"op": "set_qty", "line_id": "L1", "qty": 3}])
            holding.set()
            release.wait(timeout=TIMEOUT)
        connection.close()

    def second():
        holding.wait(timeout=TIMEOUT)
        try:
            return modify_session(channel="pos", session_key="S", load_items=load_items,
                                  ops=[{"op": "set_qty", "line_id": "L1", "qty": 5}])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.submit(first)
        waiting = pool.submit(second)
        holding.wait(timeout=TIMEOUT)
        threading.Event().wait(0.3)  # let the second modify block on the row lock
        release.set()
        done.result(timeout=TIMEOUT)
        session = waiting.result(timeout=TIMEOUT)
    stored = Session.objects.get(session_key="S")
    assert [line["qty"] for line in stored.items] == ["5", "1"]
    assert stored.subtotal_q == stored.total_q == 5 * 500 + 1200 == session.total_q
    assert stored.rev == 3
