from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models.signals import post_save
from django.utils import timezone

from omniman import signals
from omniman.exceptions import (
    AlreadyCommitted,
    CommitBlocked,
    IdempotencyKeyReused,
    PreconditionFailed,
    SessionNotOpen,
    ValidationError,
)
from omniman.models import Channel, Directive, IdempotencyKey, Order, OrderEvent, Session
from omniman.services import (
    abandon_session,
    apply_check_result,
    commit_session,
    create_session,
    get_session,
    modify_session,
)
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


def open_session(channel="pos", key="S", ops=None, **kw):
    create_session(channel=channel, session_key=key, **kw)
    if ops is None:
        ops = [add_line_op(qty=2), add_line_op("CAKE", qty="0.5", unit_price_q=1200, meta={"slice": True})]
    if ops:
        modify_session(channel=channel, session_key=key, ops=ops)


def reasons(exc):
    return [(r.code, r.ref) for r in exc.value.reasons]


def test_commit_seals_the_session_into_an_order(pos):
    open_session(data={"external_ref": "X"})
    result = commit_session(channel="pos", session_key="S", actor="ana")
    order = Order.objects.get()
    assert result.order_ref == order.ref and not result.replayed
    assert result.body == {
        "order_ref": order.ref, "status": "new", "total_q": 1600, "currency": "BRL", "items_count": 2,
        "session_key": "S", "channel_code": "pos",
    }
    assert (order.total_q, order.status, order.currency, order.data) == (1600, "new", "BRL", {"external_ref": "X"})
    assert order.external_ref == ""  # pos has no external_ref_path
    items = list(order.items.values_list("line_id", "sku", "qty", "unit_price_q", "line_total_q", "meta"))
    assert items == [("L1", "COFFEE", Decimal("2"), 500, 1000, {}),
                     ("L2", "CAKE", Decimal("0.5"), 1200, 600, {"slice": True})]
    event = OrderEvent.objects.get()
    assert (event.type, event.actor, event.payload["status"]) == ("order.created", "ana", "new")
    s = get_session("pos", "S")
    assert (s.state, s.order_ref) == ("committed", order.ref)


def test_external_ref_comes_from_the_configured_data_path(db):
    make_channel("ifood", external_ref_path="external_ref")
    open_session("ifood", data={"external_ref": "IF-123"})
    commit_session(channel="ifood", session_key="S")
    assert Order.objects.get().external_ref == "IF-123"


def test_post_commit_directives_are_written_with_the_order(web):
    make_channel("shop", post_commit_directives=["payment.capture", "notification.order_committed"])
    open_session("shop")
    ref = commit_session(channel="shop", session_key="S").order_ref
    assert sorted(Directive.objects.values_list("topic", flat=True)) == [
        "notification.order_committed", "payment.capture"]
    assert all(d.payload["order_ref"] == ref for d in Directive.objects.all())


def test_empty_session_is_blocked(pos):
    open_session(ops=[])
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="pos", session_key="S")
    assert reasons(exc) == [("empty_session", None)]
    assert exc.value.extra()["reasons"][0]["code"] == "empty_session"
    assert not Order.objects.exists()


def test_required_checks_must_be_fresh_and_passing(web):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=0)
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert reasons(exc) == [("missing_check", "stock")]

    apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=False)
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert reasons(exc) == [("failed_check", "stock")]

    apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True)
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=1)
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert reasons(exc) == [("stale_check", "stock")]

    apply_check_result(channel="web", session_key="S", rev=2, code="stock", ok=True)
    assert commit_session(channel="web", session_key="S").body["total_q"] == 1000


def test_a_blocking_issue_blocks_and_a_non_blocking_one_does_not(web):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=0)
    apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True,
                       issues=[{"id": "I1", "message": "check the address", "blocking": True}])
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert reasons(exc) == [("blocking_issue", "I1")]
    apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True,
                       issues=[{"id": "I2", "message": "fyi", "blocking": False}])
    commit_session(channel="web", session_key="S")


def test_a_second_commit_is_already_committed_with_the_order_ref(pos):
    open_session()
    ref = commit_session(channel="pos", session_key="S").order_ref
    with pytest.raises(AlreadyCommitted) as exc:
        commit_session(channel="pos", session_key="S")
    assert exc.value.code == "already_committed" and exc.value.extra() == {"order_ref": ref}
    with pytest.raises(AlreadyCommitted) as exc:
        commit_session(channel="pos", session_key="S", idempotency_key="NEW-KEY")
    assert exc.value.order_ref == ref
    assert Order.objects.count() == 1


def test_commit_of_an_abandoned_session_is_session_not_open(pos):
    open_session()
    abandon_session(channel="pos", session_key="S")
    with pytest.raises(SessionNotOpen) as exc:
        commit_session(channel="pos", session_key="S")
    assert exc.value.code == "session_not_open"


def test_commit_honours_if_match(pos):
    open_session()
    with pytest.raises(PreconditionFailed):
        commit_session(channel="pos", session_key="S", if_match=['"stale"'])
    commit_session(channel="pos", session_key="S", if_match=[get_session("pos", "S").etag])


def test_commit_on_an_inactive_channel_is_refused(pos):
    open_session()
    Channel.objects.filter(code="pos").update(is_active=False)
    with pytest.raises(ValidationError) as exc:
        commit_session(channel="pos", session_key="S")
    assert exc.value.errors[0].pointer == "/channel_code"


def test_same_key_replays_the_stored_answer(pos):
    open_session()
    first = commit_session(channel="pos", session_key="S", idempotency_key="COMMIT-1")
    again = commit_session(channel="pos", session_key="S", idempotency_key="COMMIT-1")
    assert again.replayed and again.body == first.body and again.order_ref == first.order_ref
    assert Order.objects.count() == 1 and IdempotencyKey.objects.count() == 1


def test_a_key_reused_on_another_session_never_answers_with_the_first_order(pos):
    open_session(key="A")
    open_session(key="B")
    commit_session(channel="pos", session_key="A", idempotency_key="K")
    with pytest.raises(IdempotencyKeyReused) as exc:
        commit_session(channel="pos", session_key="B", idempotency_key="K")
    assert exc.value.code == "idempotency_key_reused"
    assert "order_ref" not in exc.value.extra()
    assert get_session("pos", "B").state == "open" and Order.objects.count() == 1


def test_keys_are_scoped_to_the_channel(pos):
    make_channel("other")
    open_session("pos")
    open_session("other")
    a = commit_session(channel="pos", session_key="S", idempotency_key="K")
    b = commit_session(channel="other", session_key="S", idempotency_key="K")
    assert a.order_ref != b.order_ref and not b.replayed


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é"])
def test_idempotency_key_format(pos, key):
    open_session()
    with pytest.raises(ValidationError) as exc:
        commit_session(channel="pos", session_key="S", idempotency_key=key)
    assert exc.value.errors[0].pointer == "/idempotency_key"


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_order_insert_leaves_neither_order_nor_key(pos):
    open_session()

    def explode(sender, instance, **kwargs):
        if instance.state == "committed":
            raise RuntimeError("crash after the order and the key were written")

    post_save.connect(explode, sender=Session)
    try:
        with pytest.raises(RuntimeError):
            commit_session(channel="pos", session_key="S", idempotency_key="K")
    finally:
        post_save.disconnect(explode, sender=Session)
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()
    assert not OrderEvent.objects.exists()
    assert get_session("pos", "S").state == "open"
    # and the key is free: the retry commits
    assert not commit_session(channel="pos", session_key="S", idempotency_key="K").replayed


class _KeyStoreFails:
    """A trigger that makes every INSERT into the idempotency table fail in the
    database itself, so the key's own statement is what breaks."""

    def __init__(self):
        from django.db import connection

        self.connection = connection
        self.table = IdempotencyKey._meta.db_table

    def __enter__(self):
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE FUNCTION omniman_test_key_fails() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'the key store is down'; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(f"CREATE TRIGGER omniman_test_key_fails BEFORE INSERT ON {self.table} "
                               "FOR EACH ROW EXECUTE FUNCTION omniman_test_key_fails()")
            else:
                cursor.execute(f"CREATE TRIGGER omniman_test_key_fails BEFORE INSERT ON {self.table} "
                               "BEGIN SELECT RAISE(ABORT, 'the key store is down'); END")
        return self

    def __exit__(self, *exc):
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER omniman_test_key_fails ON {self.table}")
                cursor.execute("DROP FUNCTION omniman_test_key_fails()")
            else:
                cursor.execute("DROP TRIGGER omniman_test_key_fails")


@pytest.mark.django_db(transaction=True)
def test_a_failing_key_insert_leaves_no_order(pos):
    """The key is written in the order's transaction: when its own INSERT fails, the
    order, its items, its event and its directives go with it, and the session stays
    open; the same key then commits once the store is back."""
    from django.db import DatabaseError

    make_channel("shop", post_commit_directives=["payment.capture"])
    open_session("shop")
    with _KeyStoreFails(), pytest.raises(DatabaseError):
        commit_session(channel="shop", session_key="S", idempotency_key="K")
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()
    assert not OrderEvent.objects.exists() and not Directive.objects.exists()
    assert get_session("shop", "S").state == "open"
    result = commit_session(channel="shop", session_key="S", idempotency_key="K")
    assert not result.replayed and IdempotencyKey.objects.get().body["order_ref"] == result.order_ref


@pytest.mark.django_db(transaction=True)
def test_order_committed_is_sent_after_the_transaction(pos):
    from django.db import transaction

    open_session()
    seen = []

    def receiver(sender, order, session, actor, **kwargs):
        seen.append(Order.objects.filter(ref=order.ref).exists())

    signals.order_committed.connect(receiver)
    try:
        with transaction.atomic():
            commit_session(channel="pos", session_key="S")
            assert seen == []
        assert seen == [True]
    finally:
        signals.order_committed.disconnect(receiver)


def test_stream_positions_follow_commit_order(pos):
    for n in range(3):
        open_session(key=f"S{n}")
        commit_session(channel="pos", session_key=f"S{n}")
    assert list(Order.objects.order_by("id").values_list("stream_seq", flat=True)) == [1, 2, 3]


def test_purge_command_deletes_only_expired_keys(pos, capsys):
    open_session(key="A")
    open_session(key="B")
    commit_session(channel="pos", session_key="A", idempotency_key="OLD")
    commit_session(channel="pos", session_key="B", idempotency_key="NEW")
    IdempotencyKey.objects.filter(key="OLD").update(expires_at=timezone.now())
    call_command("omniman_purge_idempotency_keys")
    assert capsys.readouterr().out.strip() == "Purged 1 idempotency key(s)."
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["NEW"]


def test_an_expired_key_is_free_again(pos):
    open_session(key="A")
    commit_session(channel="pos", session_key="A", idempotency_key="K")
    IdempotencyKey.objects.update(expires_at=timezone.now())
    open_session(key="B")
    assert not commit_session(channel="pos", session_key="B", idempotency_key="K").replayed
