"""Races against a live server on PostgreSQL: every request is a real HTTP request on
its own connection, served by its own thread with its own database connection.

Default run: 10 rounds of 32 concurrent commits and a 4 s mixed workload;
``OMNIMAN_SOAK=1``: 50 rounds and 30 s."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from omniman.models import Order, OrderItem, Session
from omniman.services import create_session, modify_session
from omniman.testing import add_line_op

from .conftest import Http, race, soak

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 32


def test_32_concurrent_commits_with_one_key_make_exactly_one_order_each_round(live: Http) -> None:
    rounds = soak(10, 50)
    for r in range(rounds):
        key = f"ROUND-{r}"
        create_session(channel="pos", session_key=key)
        modify_session(channel="pos", session_key=key, ops=[
            add_line_op("COFFEE", 2, 500), add_line_op("CAKE", "0.5", 1201), add_line_op("WATER", 1, 300),
        ])
        body = {"channel_code": "pos", "idempotency_key": f"COMMIT-{r}"}
        answers = race(N, lambda i, key=key, body=body: live.post(f"/api/sessions/{key}/commit/", body))
        assert all(not isinstance(a, Exception) for a in answers), [a for a in answers if isinstance(a, Exception)]
        assert [a.status for a in answers] == [201] * N, {a.status: a.raw for a in answers}
        assert len({a.raw for a in answers}) == 1  # every caller got the same answer
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == N - 1
        ref = answers[0].json()["order_ref"]
        order = Order.objects.get(session_key=key)
        assert order.ref == ref and order.total_q == 1000 + 600 + 300
        assert order.items.count() == 3
    assert Order.objects.count() == rounds


def test_32_concurrent_modifies_with_one_if_match_one_wins(live: Http) -> None:
    create_session(channel="pos", session_key="TAB-1")
    etag = live.get("/api/sessions/TAB-1/?channel_code=pos").etag

    def modify(i: int) -> Any:
        ops = [add_line_op(f"SKU-{i}", i + 1, 100 * (i + 1))]
        return live.post("/api/sessions/TAB-1/modify/", {"channel_code": "pos", "ops": ops},
                         headers={"If-Match": etag})

    answers = race(N, modify)
    assert all(not isinstance(a, Exception) for a in answers), [a for a in answers if isinstance(a, Exception)]
    assert sorted(a.status for a in answers) == [200] + [412] * (N - 1)
    (winner,) = [a for a in answers if a.status == 200]
    for loser in (a for a in answers if a.status == 412):
        assert loser.json()["current_rev"] == 1
        assert loser.etag == winner.etag  # every 412 carries the current ETag
    final = live.get("/api/sessions/TAB-1/?channel_code=pos")
    assert final.status == 200 and final.etag == winner.etag
    assert final.json() == winner.json()  # the session is exactly the winner's
    assert len(final.json()["items"]) == 1 and final.json()["rev"] == 1


def _round_half_even(qty: Decimal, price: int) -> int:
    return int((qty * price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _random_ops(rnd: random.Random) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.random()
        if kind < 0.6:
            qty = rnd.choice([1, 2, 3, "0.5", "1.25", "0.333", 7])
            ops.append(add_line_op(rnd.choice(["COFFEE", "CAKE", "WATER", "TEA"]), qty, rnd.randint(0, 5000)))
        elif kind < 0.75:
            ops.append({"op": "set_qty", "line_id": "L1", "qty": rnd.choice([0, 1, 2, "2.5"])})
        elif kind < 0.9:
            ops.append({"op": "set_data", "path": f"note.n{rnd.randint(0, 3)}", "value": rnd.randint(0, 9)})
        else:
            ops.append({"op": "merge_lines"})
    return ops


def test_mixed_workload_then_audit(live: Http) -> None:
    """modify / commit / abandon / read across 20 live sessions from 8 threads, then
    audit: totals, one order per committed session, gapless revs, no 5xx."""
    seconds = soak(4, 30)
    slots = 20
    keys = [f"MIX-{i}-0" for i in range(slots)]
    for key in keys:
        create_session(channel="pos", session_key=key)
    generation = [0] * slots
    slot_locks = [threading.Lock() for _ in range(slots)]
    revs: dict[str, list[int]] = defaultdict(list)
    commits: dict[str, set[str]] = defaultdict(set)
    statuses: dict[tuple[str, int], int] = defaultdict(int)
    record = threading.Lock()
    deadline = time.monotonic() + seconds
    errors: list[str] = []

    def worker(seed: int) -> int:
        rnd = random.Random(seed)
        sent = 0
        while time.monotonic() < deadline:
            slot = rnd.randrange(slots)
            key = keys[slot]
            action = rnd.choices(["modify", "commit", "abandon", "read"], weights=[10, 2, 1, 2])[0]
            if action == "modify":
                body: dict[str, Any] = {"channel_code": "pos", "ops": _random_ops(rnd)}
                answer = live.post(f"/api/sessions/{key}/modify/", body)
                if answer.status == 200:
                    with record:
                        revs[key].append(answer.json()["rev"])
            elif action == "commit":
                body = {"channel_code": "pos"}
                if rnd.random() < 0.5:
                    body["idempotency_key"] = f"K-{key}-{rnd.randint(0, 2)}"
                answer = live.post(f"/api/sessions/{key}/commit/", body)
                if answer.status == 201:
                    with record:
                        commits[key].add(answer.json()["order_ref"])
            elif action == "abandon":
                answer = live.post(f"/api/sessions/{key}/abandon/", {"channel_code": "pos"})
            else:
                answer = live.get(f"/api/sessions/{key}/?channel_code=pos")
            sent += 1
            with record:
                statuses[(action, answer.status)] += 1
            if answer.status >= 500:
                errors.append(f"{action} {key}: {answer.status} {answer.raw[:300]!r}")
            # A closed session is replaced by a fresh one, so that 20 stay in play.
            if answer.status in (200, 201, 409) and action in ("commit", "abandon"):
                with slot_locks[slot]:
                    if keys[slot] == key:
                        generation[slot] += 1
                        new_key = f"MIX-{slot}-{generation[slot]}"
                        created = live.post("/api/sessions/", {"channel_code": "pos", "session_key": new_key})
                        assert created.status == 201, created.raw
                        keys[slot] = new_key
        return sent

    sent = race(8, worker, timeout=seconds + 120)
    assert all(isinstance(s, int) for s in sent), sent
    assert not errors, errors[:5]
    assert statuses[("modify", 200)] > 0 and statuses[("commit", 201)] > 0, dict(statuses)

    # Every order's total is the sum of its items, each rounded half-even.
    for order in Order.objects.prefetch_related("items"):
        items = list(order.items.all())
        for item in items:
            assert item.line_total_q == _round_half_even(item.qty, item.unit_price_q)
        assert order.total_q == sum(i.line_total_q for i in items), order.ref
        assert items, order.ref
    # Every committed session has exactly one order, the one every 201 named; no other
    # session has one.
    for session in Session.objects.all():
        orders = list(Order.objects.filter(session=session))
        if session.state == Session.State.COMMITTED:
            assert [o.ref for o in orders] == [session.order_ref]
            assert commits[session.session_key] <= {session.order_ref}
            items = list(OrderItem.objects.filter(order=orders[0]).order_by("position"))
            assert [(i.line_id, i.sku, i.line_total_q) for i in items] == [
                (line["line_id"], line["sku"], line["line_total_q"]) for line in session.items
            ]
        else:
            assert orders == [] and session.session_key not in commits
        # Every successful modify got the next rev: no gaps, no repeats.
        assert sorted(revs[session.session_key]) == list(range(1, session.rev + 1)), session.session_key
    committed = Session.objects.filter(state=Session.State.COMMITTED).count()
    assert Order.objects.count() == committed == sum(1 for refs in commits.values() if refs)
