"""Prepared queries (omniman.models.prepared): the hot reads built once, run with new
values, giving exactly what the queryset they stand for gives."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Value
from django.db.transaction import TransactionManagementError
from django.forms.models import model_to_dict

from omniman.exceptions import NotFound
from omniman.models import ChannelGrant, Session
from omniman.models.prepared import Prepared
from omniman.services import create_session, get_session, modify_session
from omniman.services.lines import LineSelection
from omniman.services.locks import (
    GrantedChannel,
    channel_filter,
    lock_session,
    lock_session_with_lines,
    prepared_filters,
    slot_filters,
)
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_channels(db):
    pos, shop = make_channel("pos"), make_channel("shop")
    user = get_user_model().objects.create_user("cashier")
    ChannelGrant.objects.create(channel=pos, user=user)
    for channel in ("pos", "shop"):
        create_session(channel=channel, session_key="S1")
        modify_session(channel=channel, session_key="S1", ops=[add_line_op("TEA", 2, 300), add_line_op("BUN", 1, 250)])
    return pos, shop, user


def orm_session(channel, key, *, lines):
    qs = Session.objects.select_related("channel")
    return (qs.with_items() if lines else qs).get(session_key=key, **channel_filter(channel))


def as_seen(session):
    return model_to_dict(session), model_to_dict(session.channel), session.items


@pytest.mark.parametrize("lines", [False, True])
def test_a_prepared_read_gives_what_the_orm_gives_for_every_kind_of_channel(two_channels, lines):
    pos, _, user = two_channels
    for channel in ("pos", pos, GrantedChannel("pos", user), GrantedChannel("pos"), GrantedChannel(None, user)):
        assert prepared_filters(channel, session_key="S1") is not None  # the prepared path is taken
        assert as_seen(get_session(channel, "S1", lines=lines)) == as_seen(orm_session(channel, "S1", lines=lines))


def test_a_prepared_read_checks_the_grant_in_its_one_query(two_channels, django_assert_num_queries):
    _, _, user = two_channels
    with django_assert_num_queries(1):
        assert get_session(GrantedChannel("pos", user), "S1").items[0]["sku"] == "TEA"
    with django_assert_num_queries(1), pytest.raises(NotFound):
        get_session(GrantedChannel("shop", user), "S1")  # not granted: not found, like a missing one
    with pytest.raises(NotFound):
        get_session("pos", "S2")


def test_the_prepared_sql_is_the_querysets_own(two_channels):
    """The same statement as the ORM makes for it (``get()``'s limit included): only the
    building is skipped."""
    pos, _, user = two_channels
    channel = GrantedChannel("pos", user)
    names, values = prepared_filters(channel, session_key="S1")
    from omniman.services.sessions import _SESSION_READ

    compiled = _SESSION_READ.compiled((names, True), "default")
    qs = Session.objects.select_related("channel").with_items().filter(session_key="S1", **channel_filter(channel))
    sql, params = qs.order_by()[:21].query.sql_with_params()
    assert compiled.sql == sql
    bound = list(compiled.params)
    for pos_, slot in compiled.bindings:
        bound[pos_] = values[slot.name]
    assert bound == list(params)


def test_a_key_of_another_type_takes_the_querysets_path_and_is_converted_as_before(two_channels):
    create_session(channel="pos", session_key="5")
    assert prepared_filters("pos", session_key=5) is None
    assert get_session("pos", 5).session_key == "5"  # the ORM's CharField makes it "5"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_locking_read_outside_a_transaction_is_refused_as_the_orm_refuses_it(two_channels):
    with pytest.raises(TransactionManagementError):
        lock_session("pos", "S1")
    with pytest.raises(TransactionManagementError):
        Session.objects.select_for_update().get(session_key="S1", channel__code="pos")


@pytest.mark.parametrize("selection", [LineSelection.every(), LineSelection(frozenset({"L2"}), 0),
                                       LineSelection(frozenset(), 2), LineSelection(frozenset({"L1", "L9"}), 1)])
def test_a_prepared_lock_brings_the_lines_it_is_asked_for(two_channels, selection):
    with transaction.atomic():
        session, loaded = lock_session_with_lines("pos", "S1", selection)
    assert session.session_key == "S1" and session.channel.code == "pos"
    wanted = {"L1", "L2"} if selection.ids is None else set(selection.ids) & {"L1", "L2"}
    assert {line["line_id"] for line in loaded.lines} == wanted
    # the server-made ids from next_line on (L3, L4, ...) do not exist: nothing more comes


def test_two_rows_are_an_error_as_with_get(two_channels):
    with pytest.raises(Session.MultipleObjectsReturned):
        get_session(GrantedChannel(None), "S1")  # every channel: pos and shop both have S1


def test_a_slot_the_compiler_puts_into_the_sql_is_a_loud_error(two_channels):
    def build(slots):
        stand_in = slots.text("key")
        return Session.objects.annotate(k=Value(stand_in)).extra(where=[f"session_key = '{stand_in}'"])

    with pytest.raises(AssertionError, match="not parameters"):
        Prepared(Session, build).get((), {"key": "S1"})


def test_a_slot_left_out_of_the_query_is_a_loud_error(two_channels):
    def build(slots):
        slots.text("key")
        return Session.objects.filter(**slot_filters(slots, ("channel__code",)))

    with pytest.raises(AssertionError, match="'key'"):
        Prepared(Session, build).get((), {"key": "S1", "channel__code": "pos"})


def test_a_tool_that_wraps_execute_sql_sees_a_prepared_query(two_channels, monkeypatch):
    """django-silk records queries by wrapping SQLCompiler.execute_sql: a prepared query
    runs through it too, its SQL given by as_sql as any other's."""
    from django.db.models.sql.compiler import SQLCompiler

    seen = []
    original = SQLCompiler.execute_sql

    def execute_sql(self, *args, **kwargs):
        seen.append(self.as_sql()[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "execute_sql", execute_sql)
    get_session("pos", "S1")
    assert len(seen) == 1 and '"omniman_session"' in seen[0]
