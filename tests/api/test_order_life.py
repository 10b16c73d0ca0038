"""Status hooks and session-end hooks over HTTP: a transition's ``reason`` and the
directives a channel's config enqueues with the change."""

from __future__ import annotations

import pytest

from omniman.models import Directive, Order, OrderEvent
from omniman.testing import make_channel

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked(pos):
    return make_channel(
        "pos",
        status_directives={"new": ["kitchen.new"], "cancelled": ["kitchen.cancelled"]},
        session_end_directives=["stock.release"],
    )


def _commit(api, key: str) -> str:
    open_session(api, key=key)
    add_coffee(api, key=key)
    response = api.post_json(f"/api/sessions/{key}/commit/", {"channel_code": "pos"})
    assert response.status_code == 201, response.content
    return data(response)["order_ref"]


def _directives() -> list[tuple[str, dict]]:
    return list(Directive.objects.order_by("pk").values_list("topic", "payload"))


def test_commit_and_a_cancel_with_a_reason_enqueue_the_status_hooks(api, hooked):
    ref = _commit(api, "A")
    assert _directives() == [
        ("kitchen.new", {"order_ref": ref, "channel_code": "pos", "from": None, "to": "new", "reason": None}),
    ]
    response = api.post_json(f"/api/orders/{ref}/transition/", {"to": "cancelled", "reason": "out of milk"})
    assert response.status_code == 200, response.content
    assert data(response)["status"] == "cancelled"
    assert _directives()[1:] == [
        ("kitchen.cancelled", {"order_ref": ref, "channel_code": "pos", "from": "new", "to": "cancelled",
                               "reason": "out of milk"}),
    ]
    event = OrderEvent.objects.get(type="order.status_changed")
    assert event.payload == {"from": "new", "to": "cancelled", "reason": "out of milk"}
    assert event.actor == "clerk"


@pytest.mark.parametrize("reason", ["x" * 501, 12, None, {"a": 1}])
def test_a_bad_reason_is_a_validation_error_at_its_pointer(api, hooked, reason):
    ref = _commit(api, "A")
    body = problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": "cancelled", "reason": reason}),
                   400, "validation_error")
    assert [error["pointer"] for error in body["errors"]] == ["/reason"]
    assert Order.objects.get().status == "new"
    assert [topic for topic, _ in _directives()] == ["kitchen.new"]


def test_a_refused_transition_enqueues_nothing(api, hooked):
    ref = _commit(api, "A")
    problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": "completed", "reason": "no"}), 409,
            "transition_not_allowed")
    problem(api.post_json(f"/api/orders/{ref}/transition/", {"to": "cancelled", "why": "no"}), 400,
            "validation_error")
    assert [topic for topic, _ in _directives()] == ["kitchen.new"]


def test_abandon_enqueues_the_session_end_hooks(api, hooked):
    open_session(api, key="S")
    add_coffee(api, key="S")
    response = api.post_json("/api/sessions/S/abandon/", {"channel_code": "pos"})
    assert response.status_code == 200, response.content
    assert _directives() == [
        ("stock.release", {"channel_code": "pos", "session_key": "S", "rev": 1, "reason": "abandoned"}),
    ]
    problem(api.post_json("/api/sessions/S/abandon/", {"channel_code": "pos"}), 409, "session_not_open")
    assert len(_directives()) == 1
