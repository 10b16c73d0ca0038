"""Status hooks and session-end hooks from Python: the directives a channel's
``status_directives`` and ``session_end_directives`` enqueue, in the transaction of
the change, and the signals sent after it commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from omniman import signals
from omniman.exceptions import TransitionNotAllowed, ValidationError
from omniman.models import Directive, OrderEvent, Session
from omniman.models.channel import config_errors, config_topics
from omniman.services import (
    abandon_session,
    commit_session,
    create_session,
    expire_sessions,
    modify_session,
    transition_order,
)
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db

HOOKS = {
    "status_directives": {"new": ["kitchen.new"], "cancelled": ["stock.return", "kitchen.cancelled"]},
    "session_end_directives": ["stock.release"],
}


@pytest.fixture
def hooked(db):
    return make_channel("pos", **HOOKS)


def _order(key: str = "S"):
    create_session(channel="pos", session_key=key)
    modify_session(channel="pos", session_key=key, ops=[add_line_op()])
    return commit_session(channel="pos", session_key=key).order


def _directives(**filters):
    return list(Directive.objects.filter(**filters).order_by("pk").values_list("topic", "payload"))


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "message"), [
    ({"status_directives": ["x"]}, "'status_directives' must be an object mapping a status to a list of directive"),
    ({"status_directives": {"new": "x"}}, "'status_directives' must be"),
    ({"status_directives": {"new": [""]}}, "'status_directives' must be"),
    ({"session_end_directives": "stock.release"}, "'session_end_directives' must be a list of directive topics."),
    ({"session_end_directives": [1]}, "'session_end_directives' must be"),
    ({"order_flow": {"new": ["done"]}, "status_directives": {"shipped": ["x"]}},
     "'status_directives' names 'shipped', which is not a status of 'order_flow'."),
])
def test_hook_config_is_validated(config, message):
    assert any(error.startswith(message) for error in config_errors(config)), config_errors(config)
    with pytest.raises(DjangoValidationError):
        make_channel("bad", **config)


def test_a_status_only_reached_by_a_transition_may_have_hooks():
    assert config_errors({"order_flow": {"new": ["done"]}, "status_directives": {"done": ["x"]}}) == []
    assert config_errors({"status_directives": {"anything": ["x"]}}) == []  # no flow: no statuses to check


def test_hook_topics_are_named_for_the_unhandled_topic_check():
    assert config_topics(HOOKS) == [
        ("status_directives.new", "kitchen.new"),
        ("status_directives.cancelled", "stock.return"),
        ("status_directives.cancelled", "kitchen.cancelled"),
        ("session_end_directives", "stock.release"),
    ]


# -- status hooks ---------------------------------------------------------------------


def test_commit_enqueues_the_first_status_hooks(hooked):
    order = _order()
    assert _directives() == [
        ("kitchen.new", {"order_ref": order.ref, "channel_code": "pos", "from": None, "to": "new", "reason": None}),
    ]


def test_commit_writes_post_commit_and_first_status_directives_together(db):
    make_channel("pos", post_commit_directives=["notify"], status_directives={"new": ["kitchen.new"]})
    order = _order()
    assert [topic for topic, _ in _directives()] == ["notify", "kitchen.new"]
    assert _directives(topic="notify")[0][1] == {"order_ref": order.ref, "channel_code": "pos", "session_key": "S"}


def test_entering_a_status_enqueues_its_hooks_with_the_reason(hooked):
    order = _order()
    Directive.objects.all().delete()
    transition_order(ref=order.ref, to="preparing")
    assert _directives() == []  # no hook for preparing
    transition_order(ref=order.ref, to="cancelled", actor="till", reason="customer left")
    payload = {"order_ref": order.ref, "channel_code": "pos", "from": "preparing", "to": "cancelled",
               "reason": "customer left"}
    assert _directives() == [("stock.return", payload), ("kitchen.cancelled", payload)]
    event = OrderEvent.objects.filter(type="order.status_changed").order_by("pk").last()
    assert (event.actor, event.payload) == ("till", {"from": "preparing", "to": "cancelled",
                                                     "reason": "customer left"})


def test_a_refused_or_rolled_back_transition_enqueues_nothing(hooked):
    order = _order()
    Directive.objects.all().delete()
    with pytest.raises(TransitionNotAllowed):
        transition_order(ref=order.ref, to="completed")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():  # noqa: PT012 - a rolled-back block
        transition_order(ref=order.ref, to="cancelled")
        assert len(_directives()) == 2
        raise Boom
    assert _directives() == []
    order.refresh_from_db()
    assert order.status == "new"


@pytest.mark.parametrize("reason", [123, "x" * 501, "a\x00b", ["x"]])
def test_a_bad_reason_is_a_validation_error(hooked, reason):
    order = _order()
    with pytest.raises(ValidationError) as exc:
        transition_order(ref=order.ref, to="cancelled", reason=reason)
    assert exc.value.errors[0].pointer == "/reason"
    order.refresh_from_db()
    assert order.status == "new"


def test_a_reason_of_500_characters_is_kept(hooked):
    order = _order()
    transition_order(ref=order.ref, to="cancelled", reason="x" * 500)
    assert OrderEvent.objects.get(type="order.status_changed").payload["reason"] == "x" * 500


def test_status_changed_signal_carries_the_reason_after_commit(hooked, django_capture_on_commit_callbacks):
    order = _order()
    seen = []

    def receiver(sender, order, old_status, new_status, actor, reason, **kwargs):
        seen.append((old_status, new_status, reason))

    signals.order_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            transition_order(ref=order.ref, to="cancelled", reason="burnt")
            assert seen == []
    finally:
        signals.order_status_changed.disconnect(receiver)
    assert seen == [("new", "cancelled", "burnt")]


def test_transition_with_hooks_is_one_more_insert(hooked, django_assert_num_queries):
    order = _order()
    # SAVEPOINT, lock order, UPDATE, INSERT event, INSERT directives, RELEASE
    with django_assert_num_queries(6):
        transition_order(ref=order.ref, to="cancelled")


# -- session end ----------------------------------------------------------------------


@pytest.fixture
def ended():
    seen = []

    def receiver(sender, channel_code, session_key, rev, reason, actor, **kwargs):
        seen.append((channel_code, session_key, rev, reason, actor))

    signals.session_ended.connect(receiver)
    yield seen
    signals.session_ended.disconnect(receiver)


def test_abandon_enqueues_the_session_end_hooks_and_signals_after_commit(
    hooked, ended, django_capture_on_commit_callbacks
):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add_line_op()])
    with django_capture_on_commit_callbacks(execute=True):
        abandon_session(channel="pos", session_key="S", actor="till")
        assert ended == []
    assert _directives() == [
        ("stock.release", {"channel_code": "pos", "session_key": "S", "rev": 1, "reason": "abandoned"}),
    ]
    assert ended == [("pos", "S", 1, "abandoned", "till")]


def test_abandon_with_hooks_is_one_more_insert(hooked, django_assert_num_queries):
    create_session(channel="pos", session_key="S")
    with django_assert_num_queries(5):  # SAVEPOINT, lock, UPDATE, INSERT directives, RELEASE
        abandon_session(channel="pos", session_key="S")


def test_abandon_without_hooks_enqueues_nothing(pos, django_assert_num_queries):
    create_session(channel="pos", session_key="S")
    with django_assert_num_queries(4):  # SAVEPOINT, lock, UPDATE, RELEASE
        abandon_session(channel="pos", session_key="S")
    assert _directives() == []


def test_a_committed_session_ends_no_hook(hooked, ended, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _order()
    assert [topic for topic, _ in _directives()] == ["kitchen.new"]
    assert ended == []


def test_expiry_enqueues_the_hooks_of_each_expired_session(hooked, ended, django_capture_on_commit_callbacks):
    make_channel("quiet")
    for key in ("A", "B", "C"):
        create_session(channel="pos", session_key=key)
    create_session(channel="quiet", session_key="Q")
    create_session(channel="pos", session_key="FRESH")
    modify_session(channel="pos", session_key="B", ops=[add_line_op()])
    Session.objects.exclude(session_key="FRESH").update(expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_sessions(batch_size=2) == 4
    assert _directives() == [
        ("stock.release", {"channel_code": "pos", "session_key": key, "rev": rev, "reason": "expired"})
        for key, rev in (("A", 0), ("B", 1), ("C", 0))
    ]
    assert sorted(ended) == [("pos", "A", 0, "expired", ""), ("pos", "B", 1, "expired", ""),
                             ("pos", "C", 0, "expired", ""), ("quiet", "Q", 0, "expired", "")]
    assert expire_sessions() == 0
    assert len(_directives()) == 3


def test_expiry_with_hooks_writes_one_insert_per_batch(hooked):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(5):
        create_session(channel="pos", session_key=f"S{n}")
    Session.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        assert expire_sessions(batch_size=2) == 5
    verbs = [q["sql"].split()[0] for q in queries.captured_queries]
    verbs = [v for v in verbs if v not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]
    # The channels once; per batch: the locked ids, their keys and revs, the UPDATE, one INSERT.
    assert verbs == ["SELECT"] + ["SELECT", "SELECT", "UPDATE", "INSERT"] * 3
    assert Directive.objects.count() == 5
