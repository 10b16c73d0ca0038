from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    """makemigrations --check would write nothing."""
    call_command("makemigrations", "omniman", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_session_items_move_into_lines():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("omniman", "0002_order_items_and_events_by_order_id")])
    old = executor.loader.project_state([("omniman", "0002_order_items_and_events_by_order_id")]).apps
    channel = old.get_model("omniman", "Channel").objects.create(code="pos", name="POS", currency="BRL", config={})
    line = {"sku": "A", "qty": "0.5", "unit_price_q": 100, "line_total_q": 50, "meta": {"k": 1}}
    old.get_model("omniman", "Session").objects.create(
        channel=channel, session_key="S", next_line=2, total_q=150,
        items=[{**line, "line_id": "L7"}, {**line, "line_id": "X", "qty": "1", "line_total_q": 100}],
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("omniman"))

    from omniman.models import Session

    s = Session.objects.get(session_key="S")
    assert [(i["line_id"], i["qty"], i["meta"]) for i in s.items] == [("L7", "0.5", {"k": 1}), ("X", "1", {"k": 1})]
    assert (s.line_count, s.subtotal_q, s.next_position, s.next_line) == (2, 150, 2, 8)
