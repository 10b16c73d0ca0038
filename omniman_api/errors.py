"""Every error as ``application/problem+json`` (RFC 9457): the one exception handler
and the one table from error code to HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from omniman.exceptions import OmnimanError, PreconditionFailed
from omniman_api.conditional import etag

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:omniman:problem:"

# code -> (status, title): the one table.
STATUS: dict[str, tuple[int, str]] = {
    "malformed_request": (400, "Malformed request"),
    "validation_error": (400, "Invalid request"),
    "not_authenticated": (401, "Not authenticated"),
    "permission_denied": (403, "Permission denied"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "not_acceptable": (406, "Not acceptable"),
    "session_exists": (409, "Session exists"),
    "session_not_open": (409, "Session not open"),
    "already_committed": (409, "Already committed"),
    "commit_blocked": (409, "Commit blocked"),
    # SPEC's answer for a key whose first request still runs; omniman waits instead
    # (run_idempotent serialises on a lock), so nothing raises it today.
    "idempotency_in_flight": (409, "Idempotent request in flight"),
    "transition_not_allowed": (409, "Transition not allowed"),
    "overpayment": (409, "Overpayment"),
    "refund_exceeds_paid": (409, "Refund exceeds what was paid"),
    "payment_required": (409, "Payment required"),
    "external_ref_exists": (409, "External reference exists"),
    "conflict": (409, "Conflict"),
    "precondition_failed": (412, "Precondition failed"),
    "payload_too_large": (413, "Payload too large"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "idempotency_key_reused": (422, "Idempotency key reused"),
    "precondition_required": (428, "Precondition required"),
    "throttled": (429, "Too many requests"),
    "unavailable": (503, "Service unavailable"),
}

# DRF's own exceptions -> our codes.
DRF_CODES: dict[type[drf.APIException], str] = {
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
    drf.ParseError: "malformed_request",
}

UNAVAILABLE_RETRY_AFTER = 5


class MalformedRequest(OmnimanError):
    """The body is not a JSON object (raised by the parser: HTTP, never the kernel)."""

    code = "malformed_request"
    default_detail = "The request body is not a valid JSON object."


class PayloadTooLarge(OmnimanError):
    code = "payload_too_large"
    default_detail = "The request body is too large."


def problem(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response for ``code``."""
    known_status, title = STATUS.get(code, (status or 500, code.replace("_", " ").capitalize()))
    status = status or known_status
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def _drf_detail(exc: drf.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, (list, dict)):
        return str(exc)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn omniman's errors, DRF's and database outages into problem+json."""
    if isinstance(exc, OmnimanError):
        set_rollback()
        headers: dict[str, str] = {}
        if isinstance(exc, PreconditionFailed) and exc.current is not None:
            headers["ETag"] = etag(exc.current)
        if exc.code not in STATUS:
            logger.error("omniman error without an HTTP status: %s", exc.code)
        return problem(exc.code, exc.detail, extra=exc.extra(), headers=headers)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    if isinstance(exc, drf.APIException):
        set_rollback()
        code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), None)
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]  # set by DRF on 401s
        if isinstance(exc, drf.Throttled):
            headers["Retry-After"] = str(max(1, int(getattr(exc, "wait", None) or 1)))
        if isinstance(exc, drf.ValidationError):
            return problem("validation_error", "The request is not valid.",
                           extra={"errors": _drf_errors(exc.detail)})
        if code is None:
            code = str(getattr(exc, "default_code", "error"))
            return problem(code, _drf_detail(exc), status=exc.status_code, headers=headers)
        return problem(code, _drf_detail(exc), status=exc.status_code, headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)):
        set_rollback()
        logger.warning("database unavailable: %s", exc)
        return problem(
            "unavailable",
            "The database is unavailable; try again shortly.",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    return None


def _drf_errors(detail: Any, pointer: str = "") -> list[dict[str, str]]:
    """DRF's nested ValidationError detail as a flat list of pointer errors."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            sub = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            out.extend(_drf_errors(value, sub))
        return out
    if isinstance(detail, list):
        if all(isinstance(d, str) for d in detail):
            return [{"pointer": pointer or "/", "detail": str(d), "code": getattr(d, "code", "invalid")}
                    for d in detail]
        out = []
        for index, value in enumerate(detail):
            out.extend(_drf_errors(value, f"{pointer}/{index}"))
        return out
    return [{"pointer": pointer or "/", "detail": str(detail), "code": getattr(detail, "code", "invalid")}]
