from __future__ import annotations

import logging
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
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
    assert (event.type, event.actor, event.payload["status"]) == ("order.committed", "ana", "new")
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


def test_commit_honours_the_expected_version(pos):
    open_session()
    with pytest.raises(PreconditionFailed):
        commit_session(channel="pos", session_key="S", expected_version=get_session("pos", "S").version - 1)
    commit_session(channel="pos", session_key="S", expected_version=get_session("pos", "S").version)


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
    assert list(Order.objects.order_by("id").values_list("channel_seq", flat=True)) == [1, 2, 3]


def test_stream_positions_count_per_channel(pos):
    make_channel("bar")
    for n, code in enumerate(["pos", "bar", "pos", "bar", "bar"]):
        open_session(key=f"S{n}", channel=code)
        commit_session(channel=code, session_key=f"S{n}")
    rows = Order.objects.order_by("id").values_list("channel__code", "channel_seq")
    assert list(rows) == [("pos", 1), ("bar", 1), ("pos", 2), ("bar", 2), ("bar", 3)]


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


# -- what users and operators read: refs, reasons, events, payloads, logs ------------


def test_order_refs_are_the_channel_code_then_two_groups_of_five_unambiguous_characters(db):
    make_channel("marketplace-north")  # 17 characters: the ref keeps 12
    open_session("marketplace-north")
    ref = commit_session(channel="marketplace-north", session_key="S").order_ref
    assert re.fullmatch(r"MARKETPLACE--[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", ref), ref


def test_a_blocked_commit_says_why_in_words(web):
    create_session(channel="web", session_key="S")
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert exc.value.extra()["reasons"] == [
        {"code": "empty_session", "detail": "The session has no lines."},
        {"code": "missing_check", "detail": "Check 'stock' has not run yet.", "ref": "stock"},
    ]
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=0)
    apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True, issues=[
        {"id": "I1", "message": "check the address", "blocking": True},
        {"id": "I2", "message": "", "blocking": True},
    ])
    modify_session(channel="web", session_key="S", ops=[add_line_op(unit_price_q=None)], expected_rev=1)
    with pytest.raises(CommitBlocked) as exc:
        commit_session(channel="web", session_key="S")
    assert exc.value.extra()["reasons"] == [
        {"code": "stale_check", "detail": "Check 'stock' ran for rev 1, not 2.", "ref": "stock"},
        {"code": "blocking_issue", "detail": "check the address", "ref": "I1"},
        {"code": "blocking_issue", "detail": "A blocking issue is open.", "ref": "I2"},
    ]


def test_commit_validators_see_the_channel_and_every_line_and_block_with_their_words(pos):
    from omniman.registry import Problem, registry

    seen = []

    def at_most_one_cake(*, channel, state, stage):
        seen.append((channel.code, stage, [line["sku"] for line in state.items]))
        if sum(line["sku"] == "CAKE" for line in state.items) > 1:
            yield Problem("too_much_cake", "One cake per order.")

    def on_draft(*, channel, state, stage):
        raise AssertionError("a draft validator never runs at commit")

    registry.register_validator(at_most_one_cake, stage="commit")
    registry.register_validator(on_draft, stage="draft")
    registry.validators.remove(("draft", on_draft))  # registered, then removed: only the commit one stays
    try:
        open_session(ops=[add_line_op("CAKE"), add_line_op("CAKE")])
        with pytest.raises(CommitBlocked) as exc:
            commit_session(channel="pos", session_key="S")
        assert exc.value.extra()["reasons"] == [{"code": "too_much_cake", "detail": "One cake per order."}]
        assert seen == [("pos", "commit", ["CAKE", "CAKE"])]
    finally:
        registry.validators.remove(("commit", at_most_one_cake))


@pytest.mark.parametrize(("data", "expected"), [
    ({"ifood": {"id": "IF-1"}}, "IF-1"),
    ({"ifood": {"id": 42}}, "42"),
    ({"ifood": {"id": "x" * 300}}, "x" * 128),
    ({"ifood": {"other": 1}}, ""),
    ({"ifood": "IF-1"}, ""),
    ({"ifood": {"id": None}}, ""),
    ({"ifood": {"id": {"nested": 1}}}, ""),
    ({"ifood": {"id": [1]}}, ""),
    ({}, ""),
])
def test_external_ref_is_the_scalar_at_the_configured_path_or_empty(db, data, expected):
    make_channel("ifood", external_ref_path="ifood.id")
    open_session("ifood", data=data)
    commit_session(channel="ifood", session_key="S")
    assert Order.objects.get().external_ref == expected


def test_what_a_commit_writes_besides_the_order(pos, caplog):
    make_channel("shop", post_commit_directives=["notification.order_committed"])
    open_session("shop", handle_type="table", handle_ref="12")
    session = get_session("shop", "S")
    caplog.set_level(logging.INFO, logger="omniman.services.commit")
    result = commit_session(channel="shop", session_key="S", idempotency_key="K")
    order = Order.objects.get()
    assert result.order == order and result.order.channel_seq == 1
    assert (order.handle_type, order.handle_ref, order.session_key, order.session_id) == ("table", "12", "S", session.pk)
    assert order.pricing == session.pricing and order.pricing["total_q"] == 1600
    event = OrderEvent.objects.get()
    assert (event.actor, event.payload) == ("", {"status": "new", "session_rev": 1, "total_q": 1600})
    assert Directive.objects.get().payload == {"order_ref": order.ref, "channel_code": "shop", "session_key": "S"}
    key = IdempotencyKey.objects.get()
    assert (key.status_code, key.body) == (201, result.body)
    after = Session.objects.get(pk=session.pk)
    assert after.version == session.version + 1 and after.rev == session.rev
    assert session.updated_at < after.closed_at <= after.updated_at
    assert [r.getMessage() for r in caplog.records if r.name == "omniman.services.commit"] == [
        f"order committed channel=shop session_key=S order_ref={order.ref}"]


@pytest.mark.django_db(transaction=True)
def test_order_committed_carries_the_order_session_and_actor(pos):
    open_session()
    seen = []

    def receiver(sender, order, session, actor, **kwargs):
        seen.append((sender, order.ref, order.channel_seq, order.number, order.business_day,
                     session.session_key, session.state, actor))

    signals.order_committed.connect(receiver)
    try:
        ref = commit_session(channel="pos", session_key="S", actor="ana").order_ref
    finally:
        signals.order_committed.disconnect(receiver)
    stored = Order.objects.get(ref=ref)
    assert stored.business_day is not None  # the receiver sees the stream position, number and day stored
    assert seen == [(Order, ref, 1, 1, stored.business_day, "S", "committed", "ana")]


def test_a_session_not_open_says_its_state_and_an_inactive_channel_says_so(pos):
    open_session()
    abandon_session(channel="pos", session_key="S")
    with pytest.raises(SessionNotOpen) as exc:
        commit_session(channel="pos", session_key="S")
    assert exc.value.extra() == {"state": "abandoned"} and str(exc.value.detail) == "The session is abandoned, not open."
    open_session(key="T")
    Channel.objects.filter(code="pos").update(is_active=False)
    with pytest.raises(ValidationError) as exc:
        commit_session(channel="pos", session_key="T")
    assert [e.as_dict() for e in exc.value.errors] == [
        {"pointer": "/channel_code", "detail": "this channel is not active.", "code": "inactive_channel"}]


def test_a_ref_collision_draws_a_new_ref_up_to_three_times(pos, monkeypatch, caplog):
    from omniman.services import commit as commit_module

    open_session(key="A")
    taken = commit_session(channel="pos", session_key="A").order_ref
    refs = iter([taken, taken, "POS-FRESH-00001"])
    monkeypatch.setattr(commit_module, "new_order_ref", lambda code: next(refs))
    open_session(key="B")
    assert commit_session(channel="pos", session_key="B").order_ref == "POS-FRESH-00001"
    assert [r.getMessage() for r in caplog.records if r.name == "omniman.services.commit"] == [
        "commit retried after an integrity error session_key=B"] * 2

    calls = []
    monkeypatch.setattr(commit_module, "new_order_ref", lambda code: calls.append(code) or taken)
    open_session(key="C")
    with pytest.raises(IntegrityError):
        commit_session(channel="pos", session_key="C")
    assert len(calls) == 3 and get_session("pos", "C").state == "open"


@pytest.mark.parametrize("key", [" ", "~", "a" * 255, "COMMIT-1", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_any_printable_ascii_key_of_1_to_255_characters_is_accepted(pos, key):
    open_session()
    assert not commit_session(channel="pos", session_key="S", idempotency_key=key).replayed
    assert commit_session(channel="pos", session_key="S", idempotency_key=key).replayed


@pytest.mark.parametrize("key", ["", "x" * 256, "\x1f", "\x7f", "line\n", "é", 7, None])
def test_a_bad_key_is_refused_with_its_pointer_and_words(key):
    from omniman.services.idempotency import check_key

    with pytest.raises(ValidationError) as exc:
        check_key(key, pointer="/header/idempotency-key")
    assert [e.as_dict() for e in exc.value.errors] == [{
        "pointer": "/header/idempotency-key", "code": "invalid",
        "detail": "idempotency_key must be 1 to 255 printable ASCII characters."}]


def test_fingerprints_ignore_key_order_and_read_any_value(db):
    from datetime import date

    from omniman.services.idempotency import fingerprint

    assert fingerprint("POST", {"a": 1, "b": 2}) == fingerprint("POST", {"b": 2, "a": 1})
    assert fingerprint("POST", {"a": 1}) != fingerprint("POST", {"a": 2}) != fingerprint("PUT", {"a": 2})
    assert fingerprint({"on": date(2026, 1, 2)}) == fingerprint({"on": "2026-01-02"})
    assert fingerprint({"qty": Decimal("1.50")}) == fingerprint({"qty": "1.50"})  # no JSON type: its str
    assert fingerprint({1: "x"}) == fingerprint({"1": "x"})
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint("x"))


def test_a_fingerprint_is_the_sha256_of_compact_json_with_sorted_keys_so_it_outlives_a_restart(db):
    """Stored keys are matched against fingerprints a later process computes: the bytes
    hashed are a stable format, also for an integer too big for 64 bits."""
    import hashlib
    from datetime import date

    from omniman.services.idempotency import fingerprint

    def sha(text):
        return hashlib.sha256(text.encode()).hexdigest()

    got = fingerprint("POST", {"b": "é", "a": Decimal("1.50"), 1: date(2026, 1, 2)})
    assert got == sha('["POST",{"1":"2026-01-02","a":"1.50","b":"é"}]')
    got = fingerprint("POST", {"b": 2**70, "a": Decimal("1.5")})
    assert got == sha('["POST",{"a":"1.5","b":1180591620717411303424}]')


def test_a_key_recorded_by_an_earlier_process_replays_a_commit_without_a_fingerprint(pos):
    """A commit called without ``fingerprint`` records the sha256 of ``["commit",
    session_key]``: a client retrying after a restart or an upgrade gets the stored
    answer, not ``idempotency_key_reused``."""
    import hashlib

    from omniman.services import idempotency

    open_session()
    stored = {"order_ref": "POS-STORE-00001", "status": "new"}
    with transaction.atomic():
        fp = hashlib.sha256(b'["commit","S"]').hexdigest()
        idempotency.record(Channel.objects.get(code="pos"), "K", fp, 201, stored)
    again = commit_session(channel="pos", session_key="S", idempotency_key="K")
    assert (again.replayed, again.order_ref, again.body) == (True, "POS-STORE-00001", stored)
    assert not Order.objects.exists()


def test_a_replay_answers_with_the_stored_status_body_and_headers(pos, django_assert_num_queries):
    from omniman.services import idempotency

    channel = Channel.objects.get(code="pos")
    with transaction.atomic():
        idempotency.record(channel, "K", "fp", 202, {"done": True}, {"Location": "/x"})
    replay = idempotency.lookup(channel, "K", "fp")
    assert (replay.status_code, replay.body, replay.headers) == (202, {"done": True}, {"Location": "/x"})
    with django_assert_num_queries(1):  # one statement, every field it answers with
        replay = idempotency.lookup(channel, "K", "fp")
        assert (replay.status_code, replay.body, replay.headers) == (202, {"done": True}, {"Location": "/x"})
    with pytest.raises(IdempotencyKeyReused) as exc:
        idempotency.lookup(channel, "K", "another")
    assert str(exc.value.detail) == "This idempotency key was already used for a different request in this channel."
    assert idempotency.lookup(channel, "other", "fp") is None


def test_a_key_expires_at_its_expiry_time(pos, monkeypatch):
    from omniman.services import idempotency

    channel = Channel.objects.get(code="pos")
    with transaction.atomic():
        idempotency.record(channel, "K", "fp", 201, {})
    at = IdempotencyKey.objects.get().expires_at
    monkeypatch.setattr(idempotency.timezone, "now", lambda: at)
    assert idempotency.lookup(channel, "K", "fp") is None and not IdempotencyKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_key_recorded_outside_a_transaction_is_a_programming_error(pos):
    from omniman.services import idempotency

    with pytest.raises(RuntimeError) as exc:
        idempotency.record(Channel.objects.get(code="pos"), "K", "fp", 201, {})
    assert str(exc.value) == "idempotency.record() must run inside the transaction of the change"
    assert not IdempotencyKey.objects.exists()
