"""The kernel's one idempotent-write path, as a new creating write (a payment, an
import) would use it: without the HTTP API."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, transaction

from omniman.exceptions import IdempotencyKeyReused
from omniman.models import IdempotencyKey, Session
from omniman.services import create_session, modify_session
from omniman.services.idempotency import (
    IdempotentRequest,
    Outcome,
    Replay,
    lock_key,
    run_idempotent,
)
from omniman.testing import add_line_op, make_channel
from tests.interleave import TIMEOUT, in_thread, wait_until_blocked

pytestmark = pytest.mark.django_db


def request(key: str = "K", fingerprint: str = "F") -> IdempotentRequest:
    return IdempotentRequest(key, fingerprint, lambda result: Replay(201, {"made": _plain(result)}, {"X": "1"}))


def _plain(result):
    return result.rev if isinstance(result, Session) else result


def test_a_write_runs_once_per_key_and_replays_its_recorded_answer(pos):
    runs = []

    def write(_):
        runs.append(1)
        return len(runs)

    def run(fingerprint="F"):
        return run_idempotent(request(fingerprint=fingerprint), lock=lambda: (pos, lock_key(pos, "t", None)),
                              write=write)

    first = run()
    assert first.result == 1 and not first.replayed and first.answer == Replay(201, {"made": 1}, {"X": "1"})
    again = run()
    assert again.replayed and again.result is None and again.replay == Replay(201, {"made": 1}, {"X": "1"})
    assert runs == [1]
    with pytest.raises(IdempotencyKeyReused):
        run(fingerprint="other")


def test_a_failed_write_records_nothing_and_frees_its_key(pos):
    def fail(_):
        Session.objects.create(channel=pos, session_key="GONE")
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        run_idempotent(request(), lock=lambda: (pos, None), write=fail)
    assert not IdempotencyKey.objects.exists() and not Session.objects.filter(session_key="GONE").exists()
    assert run_idempotent(request(), lock=lambda: (pos, None), write=lambda _: "ok").result == "ok"


def test_an_integrity_error_runs_the_write_again_and_the_last_one_raises(pos):
    calls = []

    def flaky(_):
        calls.append(1)
        if len(calls) < 3:
            raise IntegrityError("drawn twice")
        return "third time"

    assert run_idempotent(request(), lock=lambda: (pos, None), write=flaky).result == "third time"
    calls.clear()
    with pytest.raises(IntegrityError):  # without a key: once
        run_idempotent(None, lock=lambda: (pos, None), write=flaky)
    assert calls == [1]


def _fails_until(n):
    """A write that hits an integrity error until its ``n``-th run."""
    calls = []

    def write(_):
        calls.append(1)
        if len(calls) < n:
            raise IntegrityError("drawn again")
        return "done"

    return write


def test_each_retry_is_logged_with_its_key_and_attempt_or_handed_to_on_retry(pos, caplog):
    with caplog.at_level(logging.WARNING, logger="omniman.services.idempotency"):
        run_idempotent(request("K1"), lock=lambda: (pos, None), write=_fails_until(3))
        run_idempotent(None, lock=lambda: (pos, None), write=_fails_until(2), attempts=2)
    assert [r.getMessage() for r in caplog.records if r.name == "omniman.services.idempotency"] == [
        "write retried after an integrity error key=K1 attempt=1",
        "write retried after an integrity error key=K1 attempt=2",
        "write retried after an integrity error key= attempt=1",
    ]
    seen = []
    outcome = run_idempotent(
        None, lock=lambda: (pos, None), write=_fails_until(3), attempts=3, on_retry=seen.append
    )
    assert seen == [1, 2]
    assert outcome == Outcome(result="done")  # without a key: no answer recorded, none given


def test_create_and_modify_take_the_same_path(pos):
    made = create_session(channel="pos", session_key="S", idempotency=request("C"))
    assert made.result.session_key == "S"
    assert create_session(channel="pos", session_key="S", idempotency=request("C")).replayed
    ops = [add_line_op()]
    first = modify_session(channel="pos", session_key="S", ops=ops, idempotency=request("M"))
    assert first.result.rev == 1
    replay = modify_session(channel="pos", session_key="S", ops=ops, idempotency=request("M"))
    assert replay.replayed and replay.replay.body == {"made": 1}
    assert Session.objects.get().rev == 1


def _take_key_lock(channel, scope, key, patience="5s"):
    """Take the lock of ``key`` in ``scope`` in a transaction of its own; give up after
    ``patience`` of waiting ("0": wait as long as it takes)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [patience])
        lock_key(channel, scope, request(key))
    return "taken"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_keys_lock_holds_back_that_key_in_that_scope_and_channel_only(pos):
    web = make_channel("web")
    with ThreadPoolExecutor(max_workers=1) as pool, transaction.atomic():
        lock_key(pos, "create", request("K"))
        # Another channel, scope or key: taken at once (5 s of waiting is a failure).
        for channel, scope, key in [(web, "create", "K"), (pos, "import", "K"), (pos, "create", "K2")]:
            other = in_thread(pool, lambda c=channel, s=scope, k=key: _take_key_lock(c, s, k))
            assert other.result(timeout=TIMEOUT) == "taken", (channel.code, scope, key)
        same = in_thread(pool, lambda: _take_key_lock(pos, "create", "K", patience="0"))
        wait_until_blocked(same)  # the same: held back until the holder's COMMIT
    assert same.result(timeout=TIMEOUT) == "taken"
