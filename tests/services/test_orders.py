from __future__ import annotations

import pytest

from omniman import signals
from omniman.exceptions import NotFound, PreconditionFailed, TransitionNotAllowed, ValidationError
from omniman.models import OrderEvent
from omniman.services import commit_session, create_session, modify_session, transition_order
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(pos):
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add_line_op()])
    return commit_session(channel="pos", session_key="S").order


def test_transition_follows_the_flow_and_writes_an_event(order):
    version = order.version
    o = transition_order(ref=order.ref, to="preparing", actor="kitchen")
    assert o.status == "preparing" and o.version != version
    o = transition_order(ref=order.ref, to="ready", channel="pos", expected_version=o.version)
    events = list(OrderEvent.objects.filter(order=order).values_list("type", "actor", "payload"))
    assert events == [
        ("order.committed", "", {"status": "new", "session_rev": 1, "total_q": 500}),
        ("order.status_changed", "kitchen", {"from": "new", "to": "preparing"}),
        ("order.status_changed", "", {"from": "preparing", "to": "ready"}),
    ]


def test_a_transition_outside_the_flow_is_refused(order):
    with pytest.raises(TransitionNotAllowed) as exc:
        transition_order(ref=order.ref, to="completed")
    assert exc.value.code == "transition_not_allowed"
    transition_order(ref=order.ref, to="cancelled")
    with pytest.raises(TransitionNotAllowed):
        transition_order(ref=order.ref, to="new")  # cancelled is final
    assert OrderEvent.objects.filter(type="order.status_changed").count() == 1


def test_transition_preconditions_and_lookups(order):
    with pytest.raises(PreconditionFailed):
        transition_order(ref=order.ref, to="preparing", expected_version=order.version + 1)
    with pytest.raises(NotFound):
        transition_order(ref="NOPE", to="preparing")
    make_channel("other")
    with pytest.raises(NotFound):
        transition_order(ref=order.ref, to="preparing", channel="other")
    with pytest.raises(ValidationError) as exc:
        transition_order(ref=order.ref, to="")
    assert exc.value.errors[0].pointer == "/to"


def test_status_changed_signal_is_sent_after_commit(order, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, order, old_status, new_status, actor, **kwargs):
        seen.append((order.ref, old_status, new_status, actor))

    signals.order_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            transition_order(ref=order.ref, to="preparing", actor="kds")
            assert seen == []
        assert seen == [(order.ref, "new", "preparing", "kds")]
    finally:
        signals.order_status_changed.disconnect(receiver)
