"""The example's stock hold (example_project/cafe/stock.py): reserved by the web
channel's check, consumed by the commit, given back when the session ends without an
order or the order is cancelled, with no hold leaking across 200 random sessions."""

from __future__ import annotations

import json
import os

import pytest

from tests.example.conftest import make_example
from tests.example.harness import Example, example_env, fresh_database

SCRIPT = "from tests.example.stock_leaks import main; main({n}, {seed})"


def _run(ex: Example, n: int = 200, seed: int = 7) -> dict:
    out = ex.manage("shell", "-c", SCRIPT.format(n=n, seed=seed), timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def _check(result: dict, n: int) -> None:
    assert result["sessions"] == n and result["open"] == 0
    assert result["audit"]["problems"] == [] and result["midway_problems"] == []
    assert result["audit"]["held"] == "0"  # every session ended: nothing is held
    assert result["failed_topics"] == [], result["directives"]
    # Every way of ending a session was taken, many times.
    assert all(result["outcomes"].get(how, 0) >= 20 for how in ("commit", "abandon", "expire", "cancel")), result
    rows = result["audit"]["rows"]
    assert rows.get("released", 0) > 0 and rows.get("cancelled", 0) > 0 and rows.get("consumed", 0) > 0, rows


def test_no_hold_leaks_across_200_random_sessions(tmp_path_factory, seeded_db) -> None:
    ex = make_example(tmp_path_factory, seeded_db, "stock")
    result = _run(ex)
    _check(result, 200)
    print(json.dumps(result))  # noqa: T201 - the figures, for the run's log


@pytest.mark.postgres
def test_no_hold_leaks_across_200_random_sessions_on_postgresql(tmp_path_factory) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    with fresh_database(url, "stock") as database:
        ex = Example(tmp_path_factory.mktemp("stock-pg"), env=example_env(DATABASE_URL=database, DEBUG="1"))
        ex.manage("migrate", "--noinput")
        ex.manage("omniman_seed")
        _check(_run(ex), 200)


def test_seed_rerun_keeps_the_stock_that_orders_took(tmp_path_factory, seeded_db) -> None:
    ex = make_example(tmp_path_factory, seeded_db, "stock-seed")
    result = _run(ex, n=40, seed=3)
    assert result["audit"]["problems"] == []
    ex.manage("omniman_seed")
    seeded = dict.fromkeys(("COFFEE", "ESPRESSO", "CAPPUCCINO", "CROISSANT", "CAKE", "WATER"), 1000000)
    again = ex.manage("shell", "-c", "from tests.example.stock_leaks import audit; import json; "
                      f"print(json.dumps(audit({seeded!r})['problems']))").stdout
    assert json.loads(again.strip().splitlines()[-1]) == []


KITCHEN = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from cafe.models import Product, StockHold
from omniman.services import commit_session, create_session, modify_session, transition_order

create_session(channel="pos", session_key="KDS-1")
modify_session(channel="pos", session_key="KDS-1",
               ops=[{"op": "add_line", "sku": "CAKE", "qty": 2, "unit_price_q": 1200}])
ref = commit_session(channel="pos", session_key="KDS-1").order_ref
after_commit = str(Product.objects.get(sku="CAKE").stock)
transition_order(ref=ref, to="cancelled", reason="dropped it")
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="demo"))
print(json.dumps({
    "ref": ref, "after_commit": after_commit, "after_cancel": str(Product.objects.get(sku="CAKE").stock),
    "hold": StockHold.objects.filter(session_key="KDS-1").values_list("state", flat=True).first(),
    "kds": json.loads(client.get("/kds/cancelled/").content),
}))
"""


def test_a_cancelled_pos_order_returns_its_stock_and_reaches_the_kitchen(tmp_path_factory, seeded_db) -> None:
    ex = make_example(tmp_path_factory, seeded_db, "kitchen")
    out = json.loads(ex.manage("shell", "-c", KITCHEN).stdout.strip().splitlines()[-1])
    assert (out["after_commit"], out["after_cancel"], out["hold"]) == ("999998.000", "1000000.000", "cancelled")
    assert [(n["order_ref"], n["reason"]) for n in out["kds"]["cancelled"]] == [(out["ref"], "dropped it")]
