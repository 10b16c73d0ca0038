"""The kernel's one idempotent-write path, as a new creating write (a payment, an
import) would use it: without the HTTP API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from omniman.exceptions import IdempotencyKeyReused
from omniman.models import IdempotencyKey, Session
from omniman.services import create_session, modify_session
from omniman.services.idempotency import IdempotentRequest, Replay, lock_key, run_idempotent
from omniman.testing import add_line_op

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
