"""Channel grants, 404 for other channels' objects, operators alone on directives."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from omniman.models import Directive
from omniman.testing import make_channel

from .conftest import add_coffee, client_for, data, make_user, open_session, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(pos):
    """A user granted only the ifood channel."""
    return client_for(make_user("outsider", make_channel("ifood")))


def test_channels_lists_only_granted_ones(api, outsider, db):
    assert [c["code"] for c in data(api.get("/api/channels/"))["results"]] == ["web", "pos"]
    assert [c["code"] for c in data(outsider.get("/api/channels/"))["results"]] == ["ifood"]
    root = client_for(make_user("root", superuser=True))
    assert {c["code"] for c in data(root.get("/api/channels/"))["results"]} == {"pos", "web", "ifood"}


def test_another_channels_session_is_404_like_a_missing_one(api, outsider):
    open_session(api)
    add_coffee(api)
    hidden = outsider.get("/api/sessions/SESS-001/?channel_code=pos")
    missing = api.get("/api/sessions/NOPE/?channel_code=pos")
    assert problem(hidden, 404, "not_found") == problem(missing, 404, "not_found") | {"detail": data(hidden)["detail"]}
    for path, body in [
        ("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [{"op": "merge_lines"}]}),
        ("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}),
        ("/api/sessions/SESS-001/abandon/", {"channel_code": "pos"}),
        ("/api/sessions/", {"channel_code": "pos"}),
    ]:
        problem(outsider.post_json(path, body), 404, "not_found")
    assert data(outsider.get("/api/sessions/"))["results"] == []
    assert data(outsider.get("/api/sessions/?channel_code=pos"))["results"] == []


def test_unknown_channel_and_hidden_channel_answer_alike(api, outsider):
    a = outsider.post_json("/api/sessions/", {"channel_code": "pos"})
    b = outsider.post_json("/api/sessions/", {"channel_code": "nowhere"})
    assert a.status_code == b.status_code == 404 and a.content == b.content


def test_another_channels_order_is_404(api, outsider):
    open_session(api)
    add_coffee(api)
    ref = data(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}))["order_ref"]
    problem(outsider.get(f"/api/orders/{ref}/"), 404, "not_found")
    problem(outsider.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"}), 404, "not_found")
    assert data(outsider.get("/api/orders/"))["results"] == []
    assert data(outsider.get("/api/orders/stream/"))["results"] == []
    assert [o["ref"] for o in data(api.get("/api/orders/"))["results"]] == [ref]


def test_directives_are_for_operators_only(api, operator, user):
    Directive.objects.create(topic="payment.capture", payload={"order_ref": "X"}, status="failed", attempts=5)
    problem(api.get("/api/directives/"), 403, "permission_denied")
    d = Directive.objects.get()
    problem(api.post_json(f"/api/directives/{d.pk}/retry/"), 403, "permission_denied")
    listed = data(operator.get("/api/directives/?status=failed&topic=payment.capture"))["results"]
    assert [x["id"] for x in listed] == [d.pk]
    assert set(listed[0]) == {"id", "topic", "status", "attempts", "max_attempts", "available_at", "last_error",
                              "payload", "dispatched_at", "created_at", "updated_at"}
    user.user_permissions.add(Permission.objects.get(codename="operate", content_type__app_label="omniman"))
    assert api.get("/api/directives/").status_code == 200


def test_retry_a_failed_directive_and_refuse_others(operator, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKEND": "celery"}  # no inline run on commit
    failed = Directive.objects.create(topic="payment.capture", payload={}, status="failed", attempts=5)
    done = Directive.objects.create(topic="payment.capture", payload={}, status="done", attempts=1)
    response = operator.post_json(f"/api/directives/{failed.pk}/retry")
    body = data(response)
    assert response.status_code == 200 and body["status"] == "queued" and body["attempts"] == 0
    problem(operator.post_json(f"/api/directives/{done.pk}/retry/"), 409, "transition_not_allowed")
    problem(operator.post_json("/api/directives/999999/retry/"), 404, "not_found")
    assert data(operator.get("/api/directives/?status=queued"))["results"][0]["id"] == failed.pk


def test_a_revoked_grant_takes_effect_on_the_next_request(api, user, pos):
    from omniman.models import ChannelGrant

    etag = open_session(api)["ETag"]
    add_coffee(api)
    ref = data(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}))["order_ref"]
    open_session(api, key="S2")
    assert api.get("/api/sessions/SESS-001/?channel_code=pos").status_code == 200
    ChannelGrant.objects.filter(user=user, channel=pos).delete()
    missing = api.get("/api/sessions/NOPE/?channel_code=pos")
    for answer in (
        api.get("/api/sessions/SESS-001/?channel_code=pos"),
        api.get("/api/sessions/SESS-001/?channel_code=pos", HTTP_IF_NONE_MATCH=etag),
    ):
        assert answer.status_code == 404 and answer.content == missing.content
    for path, body in [
        ("/api/sessions/S2/modify/", {"channel_code": "pos", "ops": [{"op": "merge_lines"}]}),
        ("/api/sessions/S2/commit/", {"channel_code": "pos"}),
        ("/api/sessions/S2/abandon/", {"channel_code": "pos"}),
        ("/api/sessions/S2/resolve/", {"channel_code": "pos", "issue_id": "i", "action_id": "a"}),
        (f"/api/orders/{ref}/transition/", {"to": "preparing"}),
    ]:
        problem(api.post_json(path, body), 404, "not_found")
    problem(api.get(f"/api/orders/{ref}/"), 404, "not_found")


def test_a_superuser_reaches_every_channels_objects(api):
    open_session(api)
    add_coffee(api)
    root = client_for(make_user("root", superuser=True))
    assert root.get("/api/sessions/SESS-001/?channel_code=pos").status_code == 200
    assert root.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [
        {"op": "merge_lines"}]}).status_code == 200
    ref = data(root.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}))["order_ref"]
    assert root.post_json(f"/api/orders/{ref}/transition/", {"to": "preparing"}).status_code == 200


def test_an_inactive_channel_is_a_validation_error_on_every_session_action(api, pos):
    open_session(api)
    add_coffee(api)
    pos.is_active = False
    pos.save()
    for action, extra in [("modify", {"ops": [{"op": "merge_lines"}]}), ("commit", {}), ("abandon", {}),
                          ("resolve", {"issue_id": "i", "action_id": "a"})]:
        answer = api.post_json(f"/api/sessions/SESS-001/{action}/", {"channel_code": "pos", **extra})
        assert problem(answer, 400, "validation_error")["errors"][0]["pointer"] == "/channel_code", action
    # Reading is allowed, as before.
    assert api.get("/api/sessions/SESS-001/?channel_code=pos").status_code == 200


def test_directive_metrics_are_for_operators_only(api, operator, anon, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    Directive.objects.create(topic="t", payload={}, status="queued", available_at=now - timedelta(seconds=30))
    Directive.objects.create(topic="t", payload={}, status="queued", available_at=now + timedelta(hours=1))
    Directive.objects.create(topic="t", payload={}, status="running", attempts=1,
                             lease_until=now - timedelta(seconds=1))
    Directive.objects.create(topic="t", payload={}, status="done", attempts=1)
    Directive.objects.create(topic="t", payload={}, status="failed", attempts=5)
    problem(anon.get("/api/directives/metrics/"), 401, "not_authenticated")
    problem(api.get("/api/directives/metrics/"), 403, "permission_denied")
    for path in ("/api/directives/metrics/", "/api/directives/metrics"):
        body = data(operator.get(path))
        assert {k: body[k] for k in ("queued", "running", "done", "failed", "expired_leases")} == {
            "queued": 2, "running": 1, "done": 1, "failed": 1, "expired_leases": 1,
        }
        assert 29 <= body["oldest_due_wait_seconds"] < 60
        assert 0 <= body["oldest_queued_age_seconds"] < 60
    user.user_permissions.add(Permission.objects.get(codename="operate", content_type__app_label="omniman"))
    assert api.get("/api/directives/metrics/").status_code == 200


def _commit(client, channel: str, key: str) -> str:
    open_session(client, channel=channel, key=key)
    add_coffee(client, key=key, channel=channel)
    response = client.post_json(f"/api/sessions/{key}/commit/", {"channel_code": channel})
    assert response.status_code == 201, response.content
    return data(response)["order_ref"]


def _follow(client, cursor: str, query: str = "") -> list[str]:
    """Every order the stream hands out after ``cursor``, page after page."""
    refs = []
    while True:
        page = data(client.get(f"/api/orders/stream/?after={cursor}{query}"))
        if not page["results"]:
            return refs
        refs += [o["ref"] for o in page["results"]]
        cursor = page["cursor"]


def test_the_stream_read_by_cursor_shows_only_the_callers_channels(api, outsider):
    """Every read after a cursor keeps the grant, not only the first page: a follower
    of ifood never sees a pos order, whatever cursor it sends."""
    from omniman_api.pagination import encode_stream_cursor

    start = data(outsider.get("/api/orders/stream/"))["cursor"]
    mine = []
    for n in range(3):
        _commit(api, "pos", f"P{n}")
        mine.append(_commit(outsider, "ifood", f"I{n}"))
    _commit(api, "pos", "P-last")
    assert _follow(outsider, start) == mine
    assert _follow(outsider, encode_stream_cursor({})) == mine  # a cursor from before every order
    assert _follow(outsider, encode_stream_cursor({}), "&channel_code=pos") == []
    assert _follow(outsider, encode_stream_cursor({}), "&timeout=0.01") == mine
    assert len(_follow(api, encode_stream_cursor({}))) == 4  # pos and web are granted to api


def test_a_stream_cursor_names_only_the_callers_channels_with_orders(api, outsider):
    """The cursor of a caller whose channels hold no order says nothing of the orders
    of other channels; a forged entry for another channel shows nothing of it."""
    import base64

    import orjson

    from omniman_api.pagination import encode_stream_cursor

    empty = data(outsider.get("/api/orders/stream/"))["cursor"]
    for n in range(3):
        _commit(api, "pos", f"P{n}")
    assert data(outsider.get("/api/orders/stream/"))["cursor"] == empty == encode_stream_cursor({})
    mine = _commit(outsider, "ifood", "I0")
    cursor = data(outsider.get("/api/orders/stream/"))["cursor"]
    assert orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) == {"ifood": 1}
    assert data(api.get("/api/orders/stream/"))["cursor"] == encode_stream_cursor({"pos": 3})
    assert _follow(outsider, encode_stream_cursor({"pos": 0})) == [mine]
