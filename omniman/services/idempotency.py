"""Idempotent writes: one answer per (channel, key), written in the transaction of the
change it answers for. The fingerprint ties the key to one request, so a key reused
elsewhere can never replay another request's answer.

:func:`run_idempotent` is the one path every keyed write takes (create, modify,
commit, and each later creating request): take the lock that serialises requests for
the key, replay the stored answer if there is one, else run the write and record its
answer, all in one transaction, retried on an integrity error."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from omniman import conf
from omniman.exceptions import FieldError, IdempotencyKeyReused, ValidationError
from omniman.models import Channel, IdempotencyKey
from omniman.services.locks import key_lock

logger = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}\Z")
# How many times a keyed write runs when an integrity error interrupts it: the same
# key recorded meanwhile by a request that did not share our lock (a commit of another
# session, a modify of another session), or a unique value drawn again (an order ref).
ATTEMPTS = 3

T = TypeVar("T")
Locked = TypeVar("Locked")


@dataclass(frozen=True)
class Replay:
    """An answer as the store keeps it: what a replay of the key gives back."""

    status_code: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class IdempotentRequest:
    """A write's idempotency key, the fingerprint of its request, and ``answer``: how the
    caller turns the write's result into the answer recorded for the key."""

    key: str
    fingerprint: str
    answer: Callable[[Any], Replay]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What :func:`run_idempotent` gives: ``result`` (and the recorded ``answer``, when
    keyed) when the write ran now; ``replay`` when the key's stored answer came back."""

    result: T | None = None
    answer: Replay | None = None
    replay: Replay | None = None

    @property
    def replayed(self) -> bool:
        return self.replay is not None


def run_idempotent(
    request: IdempotentRequest | None,
    *,
    lock: Callable[[], tuple[Channel, Locked]],
    write: Callable[[Locked], T],
    last: Callable[[Locked, T], None] | None = None,
    attempts: int | None = None,
    on_retry: Callable[[int], None] | None = None,
) -> Outcome[T]:
    """Run ``write`` once per key, in one transaction.

    ``lock()`` runs first, inside the transaction: it takes the lock that serialises the
    requests that may share the key (the session's row lock; for a create, which has no
    row yet, :func:`lock_key`) and returns the channel the key is scoped to and what it
    locked, which ``write`` receives. Then a known key replays its stored answer (another
    fingerprint is ``IdempotencyKeyReused``); else ``write`` runs and, when keyed,
    ``request.answer(result)`` is recorded in the same transaction. ``last(locked,
    result)`` runs after that record, the last thing before COMMIT (a commit hands out
    its stream position there, under a lock held until COMMIT).

    An ``IntegrityError`` rolls the transaction back (inside a caller's transaction,
    only this block's savepoint) and runs it again, up to ``attempts`` times (default:
    :data:`ATTEMPTS` when keyed, once when not): the next run finds the record the
    other request made (read committed: it is visible now) or draws new values.
    ``on_retry(attempt)`` logs each retry (default: one warning naming the key)."""
    tries = attempts or (ATTEMPTS if request is not None else 1)
    for attempt in range(1, tries + 1):
        try:
            with transaction.atomic():
                channel, locked = lock()
                if request is not None:
                    replay = lookup(channel, request.key, request.fingerprint)
                    if replay is not None:
                        return Outcome(replay=replay)
                result = write(locked)
                answer = None
                if request is not None:
                    answer = request.answer(result)
                    record(channel, request.key, request.fingerprint, answer.status_code, answer.body, answer.headers)
                if last is not None:
                    last(locked, result)
                return Outcome(result=result, answer=answer)
        except IntegrityError:
            if attempt == tries:
                raise
            if on_retry is not None:
                on_retry(attempt)
                continue
            logger.warning(
                "write retried after an integrity error key=%s attempt=%s",
                request.key if request is not None else "", attempt,
            )
    raise AssertionError("unreachable")


def lock_key(channel: Channel, scope: str, request: IdempotentRequest | None) -> None:
    """Serialise the requests that share ``request``'s key in ``scope`` (a create has no
    row to lock yet); nothing to do for a write without a key."""
    if request is not None:
        key_lock(scope, channel.code, request.key)


def check_key(key: Any, pointer: str = "/idempotency_key") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise ValidationError(
            FieldError(pointer, "idempotency_key must be 1 to 255 printable ASCII characters.", "invalid")
        )
    return key


def fingerprint(*parts: Any) -> str:
    """A stable hash of the request: JSON with sorted keys, so key order never matters."""
    try:
        raw = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits (a huge qty, refused later at its pointer): the
        # standard library writes it, keys sorted the same way.
        raw = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()


def lookup(channel: Channel, key: str, fp: str) -> Replay | None:
    """The stored answer for ``key``, or None; a different fingerprint is an error.

    An expired row is deleted here, in the caller's transaction, so the key is free."""
    row = (
        IdempotencyKey.objects.filter(channel=channel, key=key)
        .only("pk", "fingerprint", "status_code", "body", "headers", "expires_at")
        .first()
    )
    if row is None:
        return None
    if row.expires_at <= timezone.now():
        IdempotencyKey.objects.filter(pk=row.pk).delete()
        return None
    if row.fingerprint != fp:
        raise IdempotencyKeyReused(
            "This idempotency key was already used for a different request in this channel."
        )
    return Replay(row.status_code, row.body, row.headers)


def record(channel: Channel, key: str, fp: str, status_code: int, body: Any,
           headers: dict[str, str] | None = None) -> None:
    """Store the answer; must run inside the transaction of the change, after ``lookup``."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("idempotency.record() must run inside the transaction of the change")
    IdempotencyKey.objects.create(
        channel=channel,
        key=key,
        fingerprint=fp,
        status_code=status_code,
        body=body,
        headers=headers or {},
        expires_at=timezone.now() + timedelta(seconds=conf.get("IDEMPOTENCY_TTL_SECONDS")),
    )


def purge_expired(now: Any = None) -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
