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
    executor.migrate(executor.loader.graph.leaf_nodes())

    from omniman.models import Session

    s = Session.objects.get(session_key="S")
    assert [(i["line_id"], i["qty"], i["meta"]) for i in s.items] == [("L7", "0.5", {"k": 1}), ("X", "1", {"k": 1})]
    assert (s.line_count, s.subtotal_q, s.next_position, s.next_line) == (2, 150, 2, 8)


@pytest.mark.django_db(transaction=True)
def test_queued_directives_keep_their_last_dispatch_and_the_unsent_are_sent_again():
    """0006: updated_at after available_at meant "sent"; those rows keep it as
    dispatched_at, the others get none and go out at the next reaper pass."""
    from datetime import timedelta

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before = [("omniman", "0005_remove_session_items")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    Directive = executor.loader.project_state(before).apps.get_model("omniman", "Directive")
    now = timezone.now()
    for name, status, available_at in [("sent", "queued", now - timedelta(seconds=5)),
                                       ("unsent", "queued", now + timedelta(seconds=5)),
                                       ("finished", "done", now - timedelta(seconds=5))]:
        Directive.objects.create(topic=name, payload={}, status=status, available_at=available_at)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from omniman.models import Directive as Current

    rows = {d.topic: d for d in Current.objects.all()}
    assert rows["sent"].dispatched_at == rows["sent"].updated_at
    assert rows["unsent"].dispatched_at is None and rows["finished"].dispatched_at is None


@pytest.mark.django_db(transaction=True)
def test_channel_currencies_are_upper_cased_or_named_before_the_constraint():
    """0007: a lowercase code is upper-cased; any other bad one stops the migration
    with the channel named, and nothing is changed."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("omniman", "0006_directive_dispatched_at")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    Channel = executor.loader.project_state(before).apps.get_model("omniman", "Channel")
    for code, currency in [("pos", "BRL"), ("web", "eur"), ("odd", "E1R")]:
        Channel.objects.create(code=code, name=code, currency=currency, config={})
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    with pytest.raises(RuntimeError, match="odd: 'E1R'"):
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert dict(Channel.objects.values_list("code", "currency"))["web"] == "eur"  # rolled back
    Channel.objects.filter(code="odd").update(currency="USD")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from omniman.models import Channel as Current

    assert dict(Current.objects.values_list("code", "currency")) == {"pos": "BRL", "web": "EUR", "odd": "USD"}


@pytest.mark.django_db(transaction=True)
def test_duplicate_external_refs_are_settled_before_the_unique_constraint():
    """0010 and 0011: stored orders were placed when created; of orders sharing an
    external_ref in a channel, the oldest keeps it, each later one has it cleared and
    an event naming the ref and the order that kept it. Another channel's same ref, and
    blank refs, are left alone; the constraint then holds."""
    from django.db import IntegrityError, connection, transaction
    from django.db.migrations.executor import MigrationExecutor

    before = [("omniman", "0009_line_options_adjustments")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Channel, Order = old.get_model("omniman", "Channel"), old.get_model("omniman", "Order")
    ifood = Channel.objects.create(code="ifood", name="iFood", currency="BRL", config={})
    rappi = Channel.objects.create(code="rappi", name="Rappi", currency="BRL", config={})
    for ref, channel, external in [("A", ifood, "M-1"), ("B", ifood, "M-1"), ("C", ifood, "M-1"),
                                   ("D", ifood, "M-2"), ("E", rappi, "M-1"), ("F", ifood, ""), ("G", ifood, "")]:
        Order.objects.create(ref=ref, channel=channel, session_key=ref, total_q=0, currency="BRL",
                             external_ref=external, status="new")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from omniman.models import Order as Current
    from omniman.models import OrderEvent

    orders = {o.ref: o for o in Current.objects.all()}
    assert {ref: o.external_ref for ref, o in orders.items()} == {
        "A": "M-1", "B": "", "C": "", "D": "M-2", "E": "M-1", "F": "", "G": ""}
    assert all(o.placed_at == o.created_at for o in orders.values())
    events = OrderEvent.objects.filter(type="order.external_ref_cleared").order_by("order_id")
    assert [(e.order.ref, e.payload) for e in events] == [
        ("B", {"external_ref": "M-1", "kept_by": "A"}), ("C", {"external_ref": "M-1", "kept_by": "A"})]
    with pytest.raises(IntegrityError), transaction.atomic():
        Current.objects.filter(ref="D").update(external_ref="M-1")


@pytest.mark.django_db(transaction=True)
def test_stream_positions_are_numbered_per_channel_in_their_old_order():
    """0012: each channel's orders get 1, 2, 3... in the order of their old
    installation-wide position (not of their ids); an order without one keeps none; the
    commit event is renamed order.committed. Reversed, the old positions come back
    gap-free and the events get their old name."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("omniman", "0011_order_external_ref_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Channel, Order = old.get_model("omniman", "Channel"), old.get_model("omniman", "Order")
    OldEvent = old.get_model("omniman", "OrderEvent")
    pos = Channel.objects.create(code="pos", name="POS", currency="BRL", config={})
    web = Channel.objects.create(code="web", name="Web", currency="BRL", config={})
    from django.utils import timezone

    now = timezone.now()
    # (ref, channel, old stream_seq): ids in this order, positions not.
    for ref, channel, seq in [("A", pos, 2), ("B", web, 1), ("C", pos, 5), ("D", pos, 3), ("E", web, 4),
                              ("F", pos, None)]:
        order = Order.objects.create(ref=ref, channel=channel, session_key=ref, total_q=0, currency="BRL",
                                     status="new", stream_seq=seq, placed_at=now)
        OldEvent.objects.create(order=order, type="order.created", payload={})
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("omniman", "0012_stream_by_channel")])

    from omniman.models import Order as Current
    from omniman.models import OrderEvent

    assert dict(Current.objects.values_list("ref", "channel_seq")) == {
        "A": 1, "D": 2, "C": 3, "B": 1, "E": 2, "F": None}
    assert set(OrderEvent.objects.values_list("type", flat=True)) == {"order.committed"}

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    restored = old.get_model("omniman", "Order").objects.order_by("stream_seq")
    assert [(o.ref, o.stream_seq) for o in restored if o.stream_seq] == [
        ("A", 1), ("B", 2), ("C", 3), ("D", 4), ("E", 5)]
    assert set(old.get_model("omniman", "OrderEvent").objects.values_list("type", flat=True)) == {"order.created"}
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
