"""Random sessions against the example's stock hold, run inside the example project
(``manage.py shell``, directives in process): each session ends by a commit, an
abandon, an expiry or a commit then a cancel, many open at once, and the stock is
audited along the way and at the end. Prints one JSON line: the outcomes and the
audit. Used by tests/example/test_stock_hold.py."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

SKUS = ["COFFEE", "ESPRESSO", "CAPPUCCINO", "CROISSANT", "CAKE", "WATER"]


def audit(initial: dict[str, Decimal]) -> dict[str, Any]:
    """Where every counted unit is, and what does not add up."""
    from cafe.models import Product, StockHold

    from omniman.models import OrderItem, Session

    by_state: dict[str, Counter[str]] = defaultdict(Counter)
    problems: list[str] = []
    open_keys = set(Session.objects.filter(state="open").values_list("channel__code", "session_key"))
    for row in StockHold.objects.all():
        for sku, qty in row.quantities.items():
            by_state[row.state][sku] += Decimal(qty)
        if row.state == "held" and (row.channel_code, row.session_key) not in open_keys:
            problems.append(f"leaked hold: {row.channel_code}/{row.session_key}")
    stock = dict(Product.objects.filter(sku__in=initial).values_list("sku", "stock"))
    for sku, start in initial.items():
        total = stock[sku] + by_state["held"][sku] + by_state["consumed"][sku]
        if total != start:
            problems.append(f"{sku}: stock {stock[sku]} + held {by_state['held'][sku]} + consumed "
                            f"{by_state['consumed'][sku]} = {total}, not {start}")
    ordered: Counter[str] = Counter()
    for sku, qty in OrderItem.objects.exclude(order__status="cancelled").values_list("sku", "qty"):
        ordered[sku] += Decimal(str(qty))
    for sku in initial:
        if ordered[sku] != by_state["consumed"][sku]:
            problems.append(f"{sku}: orders hold {ordered[sku]}, consumed rows {by_state['consumed'][sku]}")
    return {
        "problems": problems,
        "held": sum(by_state["held"].values(), Decimal(0)),
        "consumed": sum(by_state["consumed"].values(), Decimal(0)),
        "rows": dict(Counter(StockHold.objects.values_list("state", flat=True))),
    }


def run(n: int = 200, seed: int = 7, max_open: int = 12) -> dict[str, Any]:
    from cafe.models import Product

    from omniman.exceptions import CommitBlocked, TransitionNotAllowed
    from omniman.models import Directive, Session
    from omniman.services import (
        abandon_session,
        commit_session,
        create_session,
        expire_sessions,
        get_session,
        import_order,
        modify_session,
        transition_order,
    )

    rng = random.Random(seed)
    initial = dict(Product.objects.filter(stock__isnull=False, in_stock=True).values_list("sku", "stock"))
    outcomes: Counter[str] = Counter()
    audits: list[list[str]] = []
    open_sessions: list[tuple[str, str]] = []
    orders: list[str] = []
    to_expire: list[tuple[str, str]] = []

    def add(channel: str, key: str) -> None:
        sku = rng.choice(SKUS + (["SOLDOUT"] if channel == "web" else []))
        op: dict[str, Any] = {"op": "add_line", "sku": sku, "qty": rng.randint(1, 3)}
        if channel == "pos":
            op["unit_price_q"] = 500
        session = get_session(channel, key, lines=False)
        modify_session(channel=channel, session_key=key, ops=[op], expected_rev=session.rev)

    def end(channel: str, key: str) -> None:
        how = rng.choice(["commit", "abandon", "expire", "cancel"])
        if how in ("commit", "cancel"):
            session = get_session(channel, key)
            if any(line["sku"] == "SOLDOUT" for line in session.items) or not session.items:
                how = "abandon"  # the check blocks it: the customer gives up
            else:
                try:
                    ref = commit_session(channel=channel, session_key=key, expected_version=session.version)
                except CommitBlocked:
                    how = "abandon"
                else:
                    orders.append(ref.order_ref)
                    if how == "cancel":
                        transition_order(ref=ref.order_ref, to="cancelled", reason="changed their mind")
        if how == "abandon":
            abandon_session(channel=channel, session_key=key)
        elif how == "expire":
            to_expire.append((channel, key))
        outcomes[how] += 1

    def expire_marked() -> None:
        for channel, key in to_expire:
            Session.objects.filter(channel__code=channel, session_key=key).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        to_expire.clear()
        expire_sessions(batch_size=5)

    started = 0
    while started < n or open_sessions:
        can_start = started < n and len(open_sessions) < max_open
        step = rng.random()
        if can_start and (step < 0.4 or not open_sessions):
            channel = rng.choice(["web", "web", "web", "pos"])
            key = f"LEAK-{started}"
            create_session(channel=channel, session_key=key)
            open_sessions.append((channel, key))
            started += 1
        elif open_sessions and step < 0.75:
            add(*rng.choice(open_sessions))
        elif open_sessions:
            end(*open_sessions.pop(rng.randrange(len(open_sessions))))
        if rng.random() < 0.05 and to_expire:
            expire_marked()
        if rng.random() < 0.03 and orders:  # a later cancel, from any status it may leave
            ref = orders.pop(rng.randrange(len(orders)))
            try:
                transition_order(ref=ref, to="cancelled")
                outcomes["late_cancel"] += 1
            except TransitionNotAllowed:  # cancelled already
                pass
        if started % 25 == 0:
            audits.append(audit(initial)["problems"])
    expire_marked()
    # Marketplace imports: no hold before, the units are taken at the commit.
    for i in range(5):
        ops = [{"op": "add_line", "sku": rng.choice(SKUS), "qty": 1, "unit_price_q": 500}]
        import_order(channel="ifood", ops=ops, idempotency_key=f"LEAK-IMPORT-{i}", data={"external_ref": f"X{i}"})
        outcomes["import"] += 1
    final = audit(initial)
    return {
        "sessions": started,
        "outcomes": dict(outcomes),
        "open": Session.objects.filter(state="open").count(),
        "audit": {**final, "held": str(final["held"]), "consumed": str(final["consumed"])},
        "midway_problems": [p for problems in audits for p in problems],
        "directives": dict(Counter(Directive.objects.values_list("status", flat=True))),
        "failed_topics": sorted(set(Directive.objects.exclude(status="done").values_list("topic", flat=True))),
    }


def main(n: int = 200, seed: int = 7) -> None:
    print(json.dumps(run(n, seed)))  # noqa: T201 - the test reads it
