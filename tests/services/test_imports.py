"""One-call imports from Python: ``import_order`` creates, applies ops as rev 1 and
commits in one transaction under one key; ``create_session(ops=...)`` opens at rev 1."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from omniman import signals
from omniman.exceptions import (
    ChannelLocked,
    CommitBlocked,
    ExternalRefExists,
    IdempotencyKeyReused,
    SessionExists,
    ValidationError,
)
from omniman.models import Directive, IdempotencyKey, Order, OrderEvent, Session
from omniman.services import commit_session, create_session, import_order, modify_session
from omniman.services.imports import check_placed_at
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db

OPS = [add_line_op(qty=2), add_line_op("CAKE", unit_price_q=1200)]


@pytest.fixture
def ifood(db):
    return make_channel("ifood", external_ref_path="external_ref", post_commit_directives=["notify"])


def pointers(exc):
    return [(e.pointer, e.code) for e in exc.value.errors]


def test_import_makes_the_order_and_its_committed_session_at_rev_1(ifood):
    placed = timezone.now() - timedelta(hours=2)
    result = import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"},
                          placed_at=placed, handle_type="customer", handle_ref="42")
    order = Order.objects.get()
    assert result.body == {"order_ref": order.ref, "status": "new", "total_q": 2200, "currency": "BRL",
                           "items_count": 2, "session_key": order.session_key, "channel_code": "ifood"}
    assert not result.replayed
    assert (order.external_ref, order.placed_at, order.handle_ref) == ("M-1", placed, "42")
    assert [(i.sku, str(i.qty)) for i in order.items.order_by("position")] == [("COFFEE", "2.000"), ("CAKE", "1.000")]
    session = Session.objects.get()
    assert (session.state, session.rev, session.order_ref) == ("committed", 1, order.ref)
    assert [e.type for e in OrderEvent.objects.all()] == ["order.committed"]
    assert list(Directive.objects.values_list("topic", flat=True)) == ["notify"]
    assert order.channel_seq == 1


def test_a_plain_commit_is_placed_when_committed(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=OPS)
    before = timezone.now()
    commit_session(channel="pos", session_key="S")
    order = Order.objects.get()
    assert before <= order.placed_at <= timezone.now()


def test_the_same_key_replays_without_a_second_order(ifood):
    first = import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    again = import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    assert again.replayed and again.body == first.body
    assert Order.objects.count() == Session.objects.count() == IdempotencyKey.objects.count() == 1


def test_the_same_key_for_another_import_is_refused(ifood):
    import_order(channel="ifood", ops=OPS, idempotency_key="K1")
    with pytest.raises(IdempotencyKeyReused):
        import_order(channel="ifood", ops=OPS[:1], idempotency_key="K1")
    assert Order.objects.count() == 1


def test_a_second_import_of_an_external_ref_names_the_first_order(ifood):
    first = import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    with pytest.raises(ExternalRefExists) as exc:
        import_order(channel="ifood", ops=OPS, idempotency_key="K2", data={"external_ref": "M-1"})
    assert (exc.value.order_ref, exc.value.external_ref) == (first.order_ref, "M-1")
    assert exc.value.extra() == {"order_ref": first.order_ref, "external_ref": "M-1"}
    assert (Order.objects.count(), Session.objects.count(), IdempotencyKey.objects.count()) == (1, 1, 1)
    # The refused key is free: the same request under it goes through once the ref is new.
    import_order(channel="ifood", ops=OPS, idempotency_key="K2", data={"external_ref": "M-2"})
    assert Order.objects.count() == 2


def test_a_plain_commit_of_a_known_external_ref_is_refused_too(ifood):
    first = import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    create_session(channel="ifood", session_key="LATE", data={"external_ref": "M-1"})
    modify_session(channel="ifood", session_key="LATE", ops=OPS)
    with pytest.raises(ExternalRefExists) as exc:
        commit_session(channel="ifood", session_key="LATE", idempotency_key="C1")
    assert exc.value.order_ref == first.order_ref
    assert Session.objects.get(session_key="LATE").state == "open"


def test_the_same_external_ref_in_another_channel_is_another_order(ifood):
    make_channel("rappi", external_ref_path="external_ref")
    import_order(channel="ifood", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    import_order(channel="rappi", ops=OPS, idempotency_key="K1", data={"external_ref": "M-1"})
    assert Order.objects.filter(external_ref="M-1").count() == 2


def test_blank_external_refs_never_clash(ifood):
    for key in ("K1", "K2"):
        import_order(channel="ifood", ops=OPS, idempotency_key=key)
    assert list(Order.objects.values_list("external_ref", flat=True)) == ["", ""]


@pytest.mark.parametrize(("ops", "pointer"), [
    ([add_line_op(), add_line_op(qty=0)], "/ops/1/qty"),
    ([add_line_op(), {"op": "remove_line", "line_id": "NOPE"}], "/ops/1/line_id"),
    ([], "/ops"),
])
def test_a_failing_op_leaves_nothing(ifood, ops, pointer):
    with pytest.raises(ValidationError) as exc:
        import_order(channel="ifood", ops=ops, idempotency_key="K1")
    assert pointers(exc)[0][0] == pointer
    assert not (Order.objects.exists() or Session.objects.exists() or IdempotencyKey.objects.exists())


def test_a_blocked_commit_leaves_nothing(web):
    with pytest.raises(CommitBlocked) as exc:
        import_order(channel="web", ops=[add_line_op(unit_price_q=None)], idempotency_key="K1")
    assert [r.code for r in exc.value.reasons] == ["missing_check"]
    assert not (Order.objects.exists() or Session.objects.exists() or Directive.objects.exists())


def test_a_taken_session_key_leaves_nothing(pos):
    create_session(channel="pos", session_key="S")
    with pytest.raises(SessionExists):
        import_order(channel="pos", ops=OPS, idempotency_key="K1", session_key="S")
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()


def test_an_import_needs_a_key(pos):
    with pytest.raises(ValidationError) as exc:
        import_order(channel="pos", ops=OPS, idempotency_key=None)
    assert pointers(exc) == [("/idempotency_key", "required")]
    with pytest.raises(ValidationError) as exc:
        import_order(channel="pos", ops=OPS, idempotency_key="\n")
    assert pointers(exc) == [("/idempotency_key", "invalid")]


def test_a_locked_channel_refuses_ops_at_creation(db):
    make_channel("locked", edit_policy="locked")
    with pytest.raises(ChannelLocked):
        import_order(channel="locked", ops=OPS, idempotency_key="K1")
    with pytest.raises(ChannelLocked):
        create_session(channel="locked", ops=OPS)
    assert not Session.objects.exists()
    create_session(channel="locked")  # without ops it opens as before


def test_create_with_ops_opens_at_rev_1_and_sends_session_modified(pos, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, session, ops, actor, **kwargs):
        seen.append((session.session_key, len(ops), actor))

    signals.session_modified.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            session = create_session(channel="pos", session_key="S", ops=OPS, actor="ana")
    finally:
        signals.session_modified.disconnect(receiver)
    assert (session.rev, session.total_q, session.state, len(session.items)) == (1, 2200, "open", 2)
    fresh = Session.objects.with_items().get()
    assert (fresh.rev, fresh.line_count, [i["line_id"] for i in fresh.items]) == (1, 2, ["L1", "L2"])
    assert seen == [("S", 2, "ana")]


def test_create_with_a_failing_op_creates_nothing(pos):
    with pytest.raises(ValidationError):
        create_session(channel="pos", session_key="S", ops=[add_line_op(), add_line_op(qty=-1)])
    assert not Session.objects.exists()


def test_create_with_ops_on_a_checked_channel_queues_its_check_for_rev_1(web):
    create_session(channel="web", session_key="W", ops=[add_line_op(unit_price_q=None)])
    assert [(d.topic, d.payload["rev"]) for d in Directive.objects.all()] == [("stock.check", 1)]


NOW = timezone.now()


@pytest.mark.parametrize("offset", [timedelta(minutes=5), timedelta(days=-30), timedelta(0)])
def test_placed_at_within_its_bounds_is_kept(offset):
    assert check_placed_at(NOW + offset, now=NOW) == NOW + offset


@pytest.mark.parametrize("offset", [timedelta(minutes=5, seconds=1), timedelta(days=-30, seconds=-1)])
def test_placed_at_outside_its_bounds_is_refused(offset):
    with pytest.raises(ValidationError) as exc:
        check_placed_at(NOW + offset, now=NOW)
    assert pointers(exc) == [("/placed_at", "out_of_range")]


def test_placed_at_bounds_are_settings():
    with override_settings(OMNIMAN={"PLACED_AT_MAX_FUTURE_SECONDS": 3600, "PLACED_AT_MAX_AGE_DAYS": 1}):
        assert check_placed_at(NOW + timedelta(minutes=59), now=NOW)
        with pytest.raises(ValidationError):
            check_placed_at(NOW - timedelta(days=1, seconds=1), now=NOW)


def test_placed_at_must_be_an_aware_datetime():
    with pytest.raises(ValidationError) as exc:
        check_placed_at(NOW.replace(tzinfo=None), now=NOW)
    assert pointers(exc) == [("/placed_at", "invalid")]


def test_an_out_of_bounds_placed_at_leaves_nothing(pos):
    with pytest.raises(ValidationError):
        import_order(channel="pos", ops=OPS, idempotency_key="K", placed_at=timezone.now() + timedelta(hours=1))
    assert not Session.objects.exists()
