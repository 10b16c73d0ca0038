"""The one exception hierarchy of omniman. Every error carries a stable ``code``
(SPEC's error table); ``omniman_api`` maps codes to HTTP statuses in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One bad input: a JSON pointer into the request, a message and a code."""

    pointer: str
    detail: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail, "code": self.code}


class OmnimanError(Exception):
    code = "error"
    default_detail = "An error occurred."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def extra(self) -> dict[str, Any]:
        """Fields beyond type/title/status/detail/code that the API adds to the body."""
        return {}


class ValidationError(OmnimanError):
    code = "validation_error"
    default_detail = "The request is not valid."

    def __init__(self, errors: list[FieldError] | FieldError, detail: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        if detail is None and self.errors:
            first = self.errors[0]
            detail = f"{first.pointer or '/'}: {first.detail}"
        super().__init__(detail)

    def extra(self) -> dict[str, Any]:
        return {"errors": [e.as_dict() for e in self.errors]}


class NotFound(OmnimanError):
    code = "not_found"
    default_detail = "Not found."


class PermissionDenied(OmnimanError):
    code = "permission_denied"
    default_detail = "You do not have permission to do this."


class ChannelLocked(PermissionDenied):
    default_detail = "This channel does not accept modifications."


class Conflict(OmnimanError):
    code = "conflict"


class SessionExists(Conflict):
    code = "session_exists"
    default_detail = "A session with this key already exists in the channel."


class SessionNotOpen(Conflict):
    code = "session_not_open"
    default_detail = "The session is not open."

    def __init__(self, detail: str | None = None, *, state: str = "") -> None:
        super().__init__(detail or f"The session is {state}, not open.")
        self.state = state

    def extra(self) -> dict[str, Any]:
        return {"state": self.state}


class AlreadyCommitted(Conflict):
    code = "already_committed"
    default_detail = "The session is already committed."

    def __init__(self, order_ref: str, detail: str | None = None) -> None:
        super().__init__(detail)
        self.order_ref = order_ref

    def extra(self) -> dict[str, Any]:
        return {"order_ref": self.order_ref}


class ExternalRefExists(Conflict):
    """An order of the channel already carries this ``external_ref``."""

    code = "external_ref_exists"
    default_detail = "An order with this external_ref already exists in the channel."

    def __init__(self, order_ref: str, external_ref: str, detail: str | None = None) -> None:
        super().__init__(detail or f"Order {order_ref} already has external_ref {external_ref!r}.")
        self.order_ref = order_ref
        self.external_ref = external_ref

    def extra(self) -> dict[str, Any]:
        return {"order_ref": self.order_ref, "external_ref": self.external_ref}


@dataclass(frozen=True)
class BlockReason:
    code: str  # "empty_session" | "missing_check" | "stale_check" | "failed_check" | "blocking_issue" | validator code
    detail: str
    ref: str | None = None  # check code or issue id

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.ref is not None:
            out["ref"] = self.ref
        return out


class CommitBlocked(Conflict):
    code = "commit_blocked"
    default_detail = "The session cannot be committed yet."

    def __init__(self, reasons: list[BlockReason], detail: str | None = None) -> None:
        self.reasons = reasons
        if detail is None and reasons:
            detail = "; ".join(r.detail for r in reasons)
        super().__init__(detail)

    def extra(self) -> dict[str, Any]:
        return {"reasons": [r.as_dict() for r in self.reasons]}


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
    default_detail = "This status change is not allowed."


class IdempotencyKeyReused(OmnimanError):
    code = "idempotency_key_reused"
    default_detail = "This idempotency key was used for a different request."


class PreconditionFailed(OmnimanError):
    code = "precondition_failed"
    default_detail = "The resource has changed since you last read it."

    def __init__(self, detail: str | None = None, *, current_rev: int | None = None, current: Any = None) -> None:
        super().__init__(detail)
        self.current_rev = current_rev
        # The session or order as it is now (the API answers with its ETag).
        self.current = current

    def extra(self) -> dict[str, Any]:
        return {} if self.current_rev is None else {"current_rev": self.current_rev}


class PreconditionRequired(OmnimanError):
    code = "precondition_required"
    default_detail = "This channel requires If-Match or rev on every modify."


class HandlerError(OmnimanError):
    """Raised by the registry for misuse (duplicate topic, unknown topic)."""

    code = "handler_error"


@dataclass
class RetryLater(Exception):
    """A handler raises this to be run again after ``delay`` seconds (None: the backoff)."""

    reason: str = "retry requested"
    delay: float | None = None


@dataclass
class PermanentFailure(Exception):
    """A handler raises this to fail the directive for good, without further attempts."""

    reason: str = "permanent failure"
    details: dict[str, Any] = field(default_factory=dict)


class OpRejected(Exception):
    """A custom op's function raises this to refuse its input: a ``validation_error``
    at ``/ops/N/<field>`` (or at ``/ops/N`` without a field)."""

    def __init__(self, detail: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.code = code
