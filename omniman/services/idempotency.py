"""The idempotency store: one answer per (channel, key), written in the transaction of
the change it answers for. The fingerprint ties the key to one request, so a key
reused elsewhere can never replay another request's answer."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone

from omniman import conf
from omniman.exceptions import FieldError, IdempotencyKeyReused, ValidationError
from omniman.models import Channel, IdempotencyKey

KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}\Z")


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any
    headers: dict[str, str]


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
