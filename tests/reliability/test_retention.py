"""Retention: idempotency keys expire and are purged, abandoned and expired sessions
and done directives are deleted after their retention periods, and nothing else is
ever deleted."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from omniman.models import (
    Directive,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderItem,
    Session,
    SessionLine,
)
from omniman.services import abandon_session, commit_session, create_session, modify_session
from omniman.testing import add_line_op

from .conftest import make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def age(session_key: str, days: float, **fields: Any) -> None:
    """Pretend the session was last touched ``days`` ago."""
    then = timezone.now() - timedelta(days=days)
    Session.objects.filter(session_key=session_key).update(updated_at=then, **fields)


def test_idempotency_keys_expire_then_are_purged(pos: Any, settings: Any) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_user('clerk', pos)[1]}")

    def post(path: str, body: Any) -> Any:
        return api.post(path, orjson.dumps(body), content_type="application/json")

    create_session(channel="pos", session_key="A")
    modify_session(channel="pos", session_key="A", ops=[add_line_op()])
    first = post("/api/sessions/A/commit/", {"channel_code": "pos", "idempotency_key": "K"})
    assert first.status_code == 201
    assert post("/api/sessions/A/commit/", {"channel_code": "pos", "idempotency_key": "K"}).content == first.content
    assert run("omniman_purge_idempotency_keys") == "Purged 0 idempotency key(s).\n"  # not expired yet
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # Expired: the key answers no more (the session is committed, so 409 with the order).
    late = post("/api/sessions/A/commit/", {"channel_code": "pos", "idempotency_key": "K"})
    assert late.status_code == 409 and orjson.loads(late.content)["order_ref"] == orjson.loads(first.content)["order_ref"]
    assert run("omniman_purge_idempotency_keys") == "Purged 1 idempotency key(s).\n"
    assert not IdempotencyKey.objects.exists()
    assert Order.objects.count() == 1 and Session.objects.count() == 1


def test_the_ttl_setting_sets_when_a_key_expires(pos: Any, settings: Any) -> None:
    settings.OMNIMAN = {**settings.OMNIMAN, "IDEMPOTENCY_TTL_SECONDS": 60}
    create_session(channel="pos", session_key="A")
    modify_session(channel="pos", session_key="A", ops=[add_line_op()])
    commit_session(channel=pos, session_key="A", idempotency_key="K")
    key = IdempotencyKey.objects.get()
    assert timedelta(seconds=55) < key.expires_at - timezone.now() <= timedelta(seconds=60)


@pytest.fixture
def history(pos: Any, web: Any) -> dict[str, Any]:
    """Sessions of every kind and age, an order with its items, events and directives."""
    for key in ("OLD-ABANDONED", "NEW-ABANDONED", "OLD-EXPIRED", "RECENTLY-EXPIRED", "OLD-OPEN", "OLD-COMMITTED"):
        create_session(channel="pos", session_key=key)
        modify_session(channel="pos", session_key=key, ops=[add_line_op()])
    abandon_session(channel="pos", session_key="OLD-ABANDONED")
    abandon_session(channel="pos", session_key="NEW-ABANDONED")
    ref = commit_session(channel=pos, session_key="OLD-COMMITTED", idempotency_key="K").order_ref
    long_ago = timezone.now() - timedelta(days=31)
    age("OLD-ABANDONED", 31, closed_at=long_ago)
    age("NEW-ABANDONED", 29, closed_at=timezone.now() - timedelta(days=29))
    age("OLD-EXPIRED", 40, expires_at=long_ago)
    age("RECENTLY-EXPIRED", 40, expires_at=timezone.now() - timedelta(days=1))
    age("OLD-OPEN", 40, expires_at=timezone.now() + timedelta(days=1))  # idle but not expired
    age("OLD-COMMITTED", 400, closed_at=timezone.now() - timedelta(days=400))
    Order.objects.update(created_at=long_ago)
    Directive.objects.create(topic="payment.capture", payload={"order_ref": ref}, status="done", attempts=1)
    Directive.objects.create(topic="payment.capture", payload={"order_ref": ref}, status="failed", attempts=5)
    return {"ref": ref}


def counts() -> tuple[int, ...]:
    return (Order.objects.count(), OrderItem.objects.count(), OrderEvent.objects.count(),
            Directive.objects.count(), IdempotencyKey.objects.count())


def test_purge_sessions_deletes_only_old_abandoned_and_old_expired_sessions(history: dict[str, Any]) -> None:
    before = counts()
    assert run("omniman_purge_sessions") == "Purged 2 session(s).\n"
    assert sorted(Session.objects.values_list("session_key", flat=True)) == [
        "NEW-ABANDONED", "OLD-COMMITTED", "OLD-OPEN", "RECENTLY-EXPIRED",
    ]
    assert counts() == before  # orders, items, events, directives and keys are untouched
    # The purged sessions' lines went with them; the others kept theirs.
    assert SessionLine.objects.count() == sum(len(s.items) for s in Session.objects.all()) == 4
    assert run("omniman_purge_sessions") == "Purged 0 session(s).\n"
    assert Order.objects.get().ref == history["ref"]


def test_retention_comes_from_the_setting_or_the_option(history: dict[str, Any], settings: Any) -> None:
    settings.OMNIMAN = {**settings.OMNIMAN, "SESSION_RETENTION_DAYS": 60}
    assert run("omniman_purge_sessions") == "Purged 0 session(s).\n"
    assert run("omniman_purge_sessions", "--days", "0", "--batch-size", "1") == "Purged 4 session(s).\n"
    # Even with no retention at all, a committed session stays, and so does its order; an
    # open session that has not expired is still in use.
    assert sorted(Session.objects.values_list("session_key", "state")) == [
        ("OLD-COMMITTED", "committed"), ("OLD-OPEN", "open"),
    ]
    assert Order.objects.count() == 1


def test_expire_then_purge_is_the_whole_life_of_an_idle_session(pos: Any) -> None:
    create_session(channel="pos", session_key="IDLE")
    Session.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert run("omniman_expire_sessions") == "Expired 1 session(s).\n"
    assert Session.objects.get().state == "abandoned"
    assert run("omniman_purge_sessions") == "Purged 0 session(s).\n"  # kept for the retention period
    Session.objects.update(closed_at=timezone.now() - timedelta(days=31))
    assert run("omniman_purge_sessions") == "Purged 1 session(s).\n"
    assert not Session.objects.exists()


def test_purge_directives_deletes_only_those_done_long_ago(history: dict[str, Any], settings: Any) -> None:
    old = timezone.now() - timedelta(days=31)
    for status in ("queued", "running"):
        Directive.objects.create(topic="t", payload={}, status=status)
    Directive.objects.update(updated_at=old)  # all of them, failed and queued included
    Directive.objects.create(topic="t", payload={}, status="done", attempts=1)  # done just now
    orders_before, sessions_before = counts()[:3], Session.objects.count()
    assert run("omniman_purge_directives") == "Purged 1 directive(s).\n"
    assert sorted(Directive.objects.values_list("status", flat=True)) == ["done", "failed", "queued", "running"]
    assert run("omniman_purge_directives") == "Purged 0 directive(s).\n"
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_RETENTION_DAYS": 60}
    Directive.objects.filter(status="done").update(updated_at=old)
    assert run("omniman_purge_directives") == "Purged 0 directive(s).\n"  # 31 days < 60
    assert run("omniman_purge_directives", "--days", "0", "--batch-size", "1") == "Purged 1 directive(s).\n"
    # Failed ones wait for an operator; queued and running ones are work to do.
    assert sorted(Directive.objects.values_list("status", flat=True)) == ["failed", "queued", "running"]
    assert counts()[:3] == orders_before and Session.objects.count() == sessions_before


@pytest.mark.parametrize("command", ["omniman_purge_directives", "omniman_purge_sessions"])
@pytest.mark.parametrize("args", [("--days", "-1"), ("--batch-size", "0")])
def test_purge_commands_refuse_nonsense(pos: Any, command: str, args: tuple[str, ...]) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must be"):
        run(command, *args)


def test_housekeeping_runs_every_job_once(history: dict[str, Any]) -> None:
    """What beat's ``omniman.housekeeping`` and ``omniman_housekeeping`` do: the purge
    before the expiry, so a session that expired 40 days ago goes now instead of being
    abandoned today and kept 30 days more."""
    from omniman.tasks import housekeeping_task

    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    Directive.objects.filter(status="done").update(updated_at=timezone.now() - timedelta(days=31))
    assert orjson.loads(run("omniman_housekeeping", "--json")) == {
        "purged_sessions": 2,  # OLD-ABANDONED, OLD-EXPIRED
        "expired_sessions": 1,  # RECENTLY-EXPIRED, now abandoned
        "purged_directives": 1,
        "purged_idempotency_keys": 1,
    }
    assert dict(Session.objects.values_list("session_key", "state")) == {
        "NEW-ABANDONED": "abandoned", "RECENTLY-EXPIRED": "abandoned", "OLD-OPEN": "open",
        "OLD-COMMITTED": "committed",
    }
    assert list(Directive.objects.values_list("status", flat=True)) == ["failed"]
    assert Order.objects.count() == 1
    assert housekeeping_task.run() == dict.fromkeys(
        ["purged_sessions", "expired_sessions", "purged_directives", "purged_idempotency_keys"], 0)
    assert run("omniman_housekeeping").splitlines() == [
        "purged sessions: 0", "expired sessions: 0", "purged directives: 0", "purged idempotency keys: 0",
    ]
