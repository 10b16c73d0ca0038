"""The HTTP side of idempotency: the key (body or ``Idempotency-Key`` header), the
request fingerprint, and the replayed response. The store itself, and the rule that
an answer is recorded in the transaction of its change, live in the kernel
(:mod:`omniman.services.idempotency`)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from omniman.exceptions import FieldError, ValidationError
from omniman.services import idempotency

REPLAYED_HEADER = "Idempotent-Replayed"


def request_key(request: Any, body: dict[str, Any]) -> str | None:
    """The idempotency key of a request, checked; a header and a body key that differ
    are a validation error at ``/idempotency_key``."""
    header: str | None = request.META.get("HTTP_IDEMPOTENCY_KEY")
    in_body: str | None = body.get("idempotency_key")
    if in_body is not None:
        idempotency.check_key(in_body)
    if header is not None:
        idempotency.check_key(header)
        if in_body is not None and in_body != header:
            raise ValidationError(FieldError(
                "/idempotency_key", "the Idempotency-Key header and idempotency_key differ.", "mismatch"
            ))
    return in_body if in_body is not None else header


def request_fingerprint(request: Any, body: dict[str, Any]) -> str:
    """Method + path (trailing slash ignored) + canonical body without the key."""
    path = request.path.rstrip("/")
    rest = {k: v for k, v in body.items() if k != "idempotency_key"}
    return idempotency.fingerprint(request.method, path, rest)


def outcome_response(outcome: idempotency.Outcome[Any]) -> Response:
    """The answer to a keyed write: the one just recorded (rendered from the stored body,
    so a replay is byte for byte the same), or the replay of the stored one."""
    if outcome.replay is not None:
        return replay_response(outcome.replay)
    answer = outcome.answer
    assert answer is not None
    return Response(answer.body, status=answer.status_code, headers=dict(answer.headers))


def replay_response(replay: idempotency.Replay) -> Response:
    """The stored answer, as first given, marked ``Idempotent-Replayed``."""
    response = Response(replay.body, status=replay.status_code, headers=dict(replay.headers or {}))
    response[REPLAYED_HEADER] = "true"
    return response
