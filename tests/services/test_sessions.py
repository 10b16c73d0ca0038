from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.core.management import call_command
from django.utils import timezone

from omniman import signals
from omniman.exceptions import (
    ChannelLocked,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    SessionExists,
    SessionNotOpen,
    ValidationError,
)
from omniman.models import Directive, Session
from omniman.services import (
    abandon_session,
    apply_check_result,
    create_session,
    expire_sessions,
    get_session,
    modify_session,
    resolve_issue,
)
from omniman.services.preconditions import ANY_VERSION, Version
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


def add(**kw):
    return add_line_op(**kw)


# -- create -------------------------------------------------------------------------


def test_create_opens_an_empty_session_at_rev_0(pos):
    s = create_session(channel="pos", session_key="SESS-001", handle_type="table", handle_ref="12",
                       data={"guests": 2})
    s = get_session("pos", "SESS-001")
    assert (s.state, s.rev, s.items, s.total_q, s.data) == ("open", 0, [], 0, {"guests": 2})
    assert (s.handle_type, s.handle_ref) == ("table", "12")
    assert s.expires_at > timezone.now()


def test_create_makes_a_key_when_none_is_given(pos):
    a = create_session(channel=pos)
    b = create_session(channel=pos)
    assert a.session_key != b.session_key


def test_create_with_an_existing_key_is_session_exists(pos):
    create_session(channel="pos", session_key="K")
    with pytest.raises(SessionExists) as exc:
        create_session(channel="pos", session_key="K")
    assert exc.value.code == "session_exists"
    # the same key in another channel is another session
    make_channel("other")
    create_session(channel="other", session_key="K")


@pytest.mark.parametrize("key", ["", "x" * 65, "with space", "é", 5])
def test_create_validates_the_key(pos, key):
    with pytest.raises(ValidationError) as exc:
        create_session(channel="pos", session_key=key)
    assert exc.value.errors[0].pointer == "/session_key"


def test_create_validates_data(pos, settings):
    with pytest.raises(ValidationError) as exc:
        create_session(channel="pos", data=[1])
    assert exc.value.errors[0].pointer == "/data"
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_DATA_BYTES": 20}
    with pytest.raises(ValidationError) as exc:
        create_session(channel="pos", data={"note": "x" * 30})
    assert exc.value.errors[0].code == "max_size"
    assert not Session.objects.exists()


def test_create_measures_data_as_set_data_does(pos, settings):
    """One size rule for ``data`` given whole and for ``set_data``: compact JSON, at
    most ``MAX_DATA_BYTES`` (20 here: ``{"n":"`` + 12 characters + ``"}``)."""
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_DATA_BYTES": 20}
    assert create_session(channel="pos", session_key="AT", data={"n": "x" * 12}).data == {"n": "x" * 12}
    for data, expected in [
        ({"n": "x" * 13}, ("/data", "data must be at most 20 bytes.", "max_size")),
        ({"n": 2**70}, ("/data", "data must be valid JSON.", "invalid")),
    ]:
        with pytest.raises(ValidationError) as exc:
            create_session(channel="pos", data=data)
        error = exc.value.errors[0]
        assert (error.pointer, error.detail, error.code) == expected
    assert list(Session.objects.values_list("session_key", flat=True)) == ["AT"]


def test_create_in_an_unknown_or_inactive_channel(db):
    with pytest.raises(ValidationError) as exc:
        create_session(channel="nope")
    assert exc.value.errors[0].pointer == "/channel_code"
    make_channel("off", is_active=False)
    with pytest.raises(ValidationError) as exc:
        create_session(channel="off")
    assert exc.value.errors[0].code == "inactive_channel"


def test_session_ttl_comes_from_the_channel(db):
    make_channel("short", session_ttl_minutes=5)
    s = create_session(channel="short")
    assert timedelta(minutes=4) < s.expires_at - timezone.now() <= timedelta(minutes=5)


# -- modify -------------------------------------------------------------------------


def test_one_modify_is_one_rev_whatever_the_number_of_ops(pos):
    create_session(channel="pos", session_key="S")
    s = modify_session(channel="pos", session_key="S", ops=[add(), add(), add()])
    assert s.rev == 1 and len(s.items) == 3 and s.total_q == 1500
    s = modify_session(channel="pos", session_key="S", ops=[{"op": "remove_line", "line_id": "L2"}])
    assert s.rev == 2 and get_session("pos", "S").total_q == 1000


def test_stale_rev_is_precondition_failed_with_the_current_rev(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add()], expected_rev=0)
    with pytest.raises(PreconditionFailed) as exc:
        modify_session(channel="pos", session_key="S", ops=[add()], expected_rev=0)
    assert exc.value.current_rev == 1 and exc.value.extra() == {"current_rev": 1}
    assert get_session("pos", "S").rev == 1


def test_expected_versions(pos):
    s = create_session(channel="pos", session_key="S")
    s = modify_session(channel="pos", session_key="S", ops=[add()], expected_version=s.version)
    with pytest.raises(PreconditionFailed) as exc:
        modify_session(channel="pos", session_key="S", ops=[add()], expected_version=s.version - 1)
    assert exc.value.current == s
    # The API's form (one Version per If-Match tag): another row's version never matches.
    other = Version(s.pk + 1, s.rev, s.version)
    with pytest.raises(PreconditionFailed):
        modify_session(channel="pos", session_key="S", ops=[add()], expected_version=[other])
    s = modify_session(channel="pos", session_key="S", ops=[add()], expected_version=[other, Version.of(s)])
    s = modify_session(channel="pos", session_key="S", ops=[add()], expected_version=ANY_VERSION)
    assert s.rev == 3


def test_require_if_match_channel_refuses_an_unconditional_modify(web):
    create_session(channel="web", session_key="S")
    with pytest.raises(PreconditionRequired) as exc:
        modify_session(channel="web", session_key="S", ops=[add(unit_price_q=None)])
    assert exc.value.code == "precondition_required"
    s = modify_session(channel="web", session_key="S", ops=[add(unit_price_q=None)], expected_rev=0)
    assert s.items[0]["unit_price_q"] == 500  # from the catalog


def test_modify_queues_the_channel_checks_for_the_new_rev(web):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add(unit_price_q=None)], expected_rev=0)
    d = Directive.objects.get()
    assert d.topic == "stock.check"
    assert d.payload == {"check": "stock", "channel_code": "web", "session_key": "S", "rev": 1}


def test_locked_channel_refuses_modify(db):
    make_channel("locked", edit_policy="locked")
    create_session(channel="locked", session_key="S")
    with pytest.raises(ChannelLocked) as exc:
        modify_session(channel="locked", session_key="S", ops=[add()])
    assert exc.value.code == "permission_denied"


def test_modify_of_a_missing_session_is_not_found(pos):
    with pytest.raises(NotFound):
        modify_session(channel="pos", session_key="nope", ops=[add()])


def test_modify_of_a_closed_session_is_session_not_open(pos):
    create_session(channel="pos", session_key="S")
    abandon_session(channel="pos", session_key="S")
    with pytest.raises(SessionNotOpen) as exc:
        modify_session(channel="pos", session_key="S", ops=[add()])
    assert exc.value.extra() == {"state": "abandoned"}


def test_a_rejected_modify_leaves_the_stored_session_byte_for_byte_equal(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add(), {"op": "set_data", "path": "a", "value": 1}])

    def snapshot():
        s = Session.objects.get(session_key="S")
        return orjson.dumps([s.items, s.data, s.pricing, s.total_q, s.rev, s.version, s.next_line,
                             s.next_position, s.line_count, s.subtotal_q, s.updated_at.isoformat()])

    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        modify_session(channel="pos", session_key="S", ops=[
            add(sku="NEW"), {"op": "set_data", "path": "a", "value": 2}, {"op": "set_qty", "line_id": "L9", "qty": 1},
        ])
    assert exc.value.errors[0].pointer == "/ops/2/line_id"
    assert snapshot() == before


def test_session_modified_is_sent_after_commit(pos, django_capture_on_commit_callbacks):
    create_session(channel="pos", session_key="S")
    seen = []

    def receiver(sender, session, ops, actor, **kwargs):
        seen.append((session.rev, len(ops), actor))

    signals.session_modified.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            modify_session(channel="pos", session_key="S", ops=[add(), add()], actor="ana")
            assert seen == []  # not before the transaction commits
        assert len(callbacks) == 1
        assert seen == [(1, 2, "ana")]
    finally:
        signals.session_modified.disconnect(receiver)


def test_get_session_is_one_query(pos, django_assert_num_queries):
    create_session(channel="pos", session_key="S")
    with django_assert_num_queries(1):
        s = get_session("pos", "S")
        assert s.channel.code == "pos"


# -- abandon --------------------------------------------------------------------------


def test_abandon(pos):
    s = create_session(channel="pos", session_key="S")
    with pytest.raises(PreconditionFailed):
        abandon_session(channel="pos", session_key="S", expected_version=s.version + 1)
    s = abandon_session(channel="pos", session_key="S", expected_version=s.version)
    assert s.state == "abandoned" and s.closed_at is not None
    with pytest.raises(SessionNotOpen):
        abandon_session(channel="pos", session_key="S")


# -- checks and issues ------------------------------------------------------------------


def test_check_result_for_the_current_rev_is_recorded_and_a_stale_one_ignored(web):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add(unit_price_q=None)], expected_rev=0)
    version = get_session("web", "S").version
    assert apply_check_result(channel="web", session_key="S", rev=0, code="stock", ok=True) is False
    assert get_session("web", "S").checks == {}
    assert apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=True,
                              detail={"held": 1}) is True
    s = get_session("web", "S")
    assert s.checks["stock"]["rev"] == 1 and s.checks["stock"]["ok"] is True
    assert s.checks["stock"]["detail"] == {"held": 1}
    assert s.rev == 1 and s.version != version  # a check changes the version (the ETag), not the rev


def _with_issue(web):
    create_session(channel="web", session_key="S")
    modify_session(channel="web", session_key="S", ops=[add(sku="SOLDOUT", unit_price_q=None)], expected_rev=0)
    apply_check_result(
        channel="web", session_key="S", rev=1, code="stock", ok=False,
        issues=[{"id": "I1", "code": "out_of_stock", "message": "SOLDOUT is out of stock", "actions": [
            {"id": "remove", "label": "Remove it", "ops": [{"op": "remove_line", "line_id": "L1"}]},
            {"id": "swap", "label": "Coffee instead",
             "ops": [{"op": "replace_sku", "line_id": "L1", "sku": "COFFEE"}]},
        ]}],
    )


def test_resolve_issue_applies_the_action_as_one_rev_and_drops_the_issue(web):
    _with_issue(web)
    s = get_session("web", "S")
    assert s.issues[0]["blocking"] is True and s.issues[0]["source"] == "stock"
    s = resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="swap")
    s = get_session("web", "S")
    assert s.rev == 2 and s.issues == [] and s.items[0]["sku"] == "COFFEE" and s.total_q == 500


def test_resolve_unknown_issue_or_action(web):
    _with_issue(web)
    with pytest.raises(ValidationError) as exc:
        resolve_issue(channel="web", session_key="S", issue_id="nope", action_id="swap")
    assert exc.value.errors[0].pointer == "/issue_id"
    with pytest.raises(ValidationError) as exc:
        resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="nope")
    assert exc.value.errors[0].pointer == "/action_id"
    assert len(get_session("web", "S").issues) == 1


# -- expiry ---------------------------------------------------------------------------


def test_expire_sessions_abandons_only_open_expired_sessions(pos):
    old = create_session(channel="pos", session_key="OLD")
    create_session(channel="pos", session_key="FRESH")
    done = create_session(channel="pos", session_key="DONE")
    past = timezone.now() - timedelta(minutes=1)
    Session.objects.filter(pk__in=[old.pk, done.pk]).update(expires_at=past)
    abandon_session(channel="pos", session_key="DONE")
    assert expire_sessions() == 1
    states = dict(Session.objects.values_list("session_key", "state"))
    assert states == {"OLD": "abandoned", "FRESH": "open", "DONE": "abandoned"}
    assert expire_sessions() == 0


def test_expire_sessions_works_in_batches(pos):
    past = timezone.now() - timedelta(minutes=1)
    for n in range(5):
        create_session(channel="pos", session_key=f"S{n}")
    Session.objects.update(expires_at=past)
    assert expire_sessions(batch_size=2) == 5
    assert not Session.objects.filter(state="open").exists()


def test_expire_command(pos, capsys):
    s = create_session(channel="pos", session_key="S")
    Session.objects.filter(pk=s.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("omniman_expire_sessions")
    assert capsys.readouterr().out.strip() == "Expired 1 session(s)."
    assert get_session("pos", "S").state == "abandoned"


def test_resolve_issue_behaves_like_a_modify(web, django_capture_on_commit_callbacks):
    _with_issue(web)
    with pytest.raises(PreconditionFailed):
        resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="swap", expected_version=0)
    with pytest.raises(PreconditionFailed):
        resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="swap", expected_rev=0)
    seen = []

    def receiver(sender, session, ops, actor, **kwargs):
        seen.append((session.rev, len(ops), actor))

    signals.session_modified.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="remove", actor="ana",
                          expected_rev=1)
    finally:
        signals.session_modified.disconnect(receiver)
    assert seen == [(2, 1, "ana")]
    s = get_session("web", "S")
    assert (s.items, s.line_count, s.subtotal_q, s.total_q) == ([], 0, 0, 0)


def test_resolve_issue_on_a_locked_channel_is_channel_locked(web):
    _with_issue(web)
    make_channel("web", edit_policy="locked", pricing_policy="internal", checks={"stock": "stock.check"})
    with pytest.raises(ChannelLocked):
        resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="swap")
    assert len(get_session("web", "S").issues) == 1


# -- lines ----------------------------------------------------------------------------


def test_lines_keep_their_place_and_a_line_added_again_goes_last(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add(sku="A"), add(sku="B"), add(sku="C")])
    s = modify_session(channel="pos", session_key="S", ops=[
        {"op": "set_qty", "line_id": "L2", "qty": 3},
        {"op": "remove_line", "line_id": "L1"},
        add(sku="D", line_id="L1"),
    ])
    assert s.line_count == 3 and s.subtotal_q == s.total_q == 500 * 5
    assert [(line["line_id"], line["sku"], line["qty"]) for line in get_session("pos", "S").items] == [
        ("L2", "B", "3"), ("L3", "C", "1"), ("L1", "D", "1"),
    ]
    assert s.items == get_session("pos", "S").items  # loaded again after a partial modify


def test_merge_lines_reads_and_writes_every_line(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add(), add(sku="B"), add(qty=2), add(qty="0.5")])
    s = modify_session(channel="pos", session_key="S", ops=[{"op": "merge_lines"}])
    rows = [(line["line_id"], line["qty"]) for line in get_session("pos", "S").items]
    assert rows == [("L1", "3.5"), ("L2", "1")] == [(line["line_id"], line["qty"]) for line in s.items]
    assert (s.line_count, s.total_q) == (2, 500 * 4 + 250)


def test_a_server_id_that_is_taken_by_a_stored_line_is_skipped(pos):
    """Lines written behind the kernel's back: the lock brings the taken id, the engine
    asks for every line, and the new line gets the next free id."""
    from omniman.models import SessionLine

    s = create_session(channel="pos", session_key="S")
    SessionLine.objects.create(session=s, line_id="L1", position=0, sku="X", qty="1", unit_price_q=5,
                               line_total_q=5)
    SessionLine.objects.create(session=s, line_id="L2", position=1, sku="X", qty="1", unit_price_q=5,
                               line_total_q=5)
    Session.objects.filter(pk=s.pk).update(line_count=2, subtotal_q=10, next_position=2)
    s = modify_session(channel="pos", session_key="S", ops=[add()])
    assert [line["line_id"] for line in get_session("pos", "S").items] == ["L1", "L2", "L3"]
    assert (s.next_line, s.line_count, s.total_q) == (4, 3, 510)


def test_the_line_limit_counts_every_stored_line(pos, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_LINES_PER_SESSION": 3}
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add(), add(), add()])
    with pytest.raises(ValidationError) as exc:
        modify_session(channel="pos", session_key="S", ops=[add()])
    assert exc.value.errors[0].code == "max_lines"
