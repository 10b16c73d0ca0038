"""Preconditions in integers: what a conditional write expects of the row it locks.

A session or order has a change counter, ``version``, +1 on every change of its
representation (a session also has ``rev``, +1 per modify). A caller that last saw
``version`` 7 passes ``expected_version=7``; the API, which reads ETags from
``If-Match``, passes the :class:`Version` values it parsed out of them, or
:data:`ANY_VERSION` for ``*``. Formatting and parsing ETags is HTTP and lives in
:mod:`omniman_api.conditional`."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import NamedTuple, Protocol

from omniman.exceptions import FieldError, PreconditionFailed, PreconditionRequired, ValidationError


class HasActive(Protocol):
    is_active: bool


def require_active(channel: HasActive, pointer: str = "/channel_code") -> None:
    """The one rule for writes to a channel that is not active: a ``validation_error``
    (code ``inactive_channel``) at ``pointer``, the field that named the channel."""
    if not channel.is_active:
        raise ValidationError(FieldError(pointer, "this channel is not active.", "inactive_channel"))


class Versioned(Protocol):
    pk: int
    version: int


class Version(NamedTuple):
    """One version of one row: its id, its ``rev`` (0 for an order) and ``version``."""

    id: int
    rev: int
    version: int

    @classmethod
    def of(cls, row: Versioned) -> Version:
        return cls(row.pk, getattr(row, "rev", 0), row.version)


class _AnyVersion(Collection[Version]):
    """Every version (``If-Match: *``): the row only has to exist."""

    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self) -> Iterator[Version]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY_VERSION"


#: Every version (``If-Match: *``): the row only has to exist.
ANY_VERSION: Collection[Version] = _AnyVersion()

# An expected version: the row's ``version`` (a Python caller), or the versions any of
# which will do (the API: one per ETag of an If-Match list; ANY_VERSION for ``*``).
Expected = int | Collection[Version]


def matches(row: Versioned, expected: Expected) -> bool:
    if isinstance(expected, int):
        return not isinstance(expected, bool) and expected == row.version
    return Version.of(row) in expected


def check_preconditions(
    row: Versioned,
    *,
    expected_version: Expected | None = None,
    expected_rev: int | None = None,
    required: bool = False,
) -> None:
    """Raise ``PreconditionFailed`` (with ``current_rev`` for a session, and the row) when
    the row is not at ``expected_version`` or ``expected_rev``; with ``required``, neither
    given is ``PreconditionRequired``."""
    if required and expected_rev is None and expected_version is None:
        raise PreconditionRequired()
    rev = getattr(row, "rev", None)
    stale = expected_version is not None and not matches(row, expected_version)
    if expected_rev is not None and expected_rev != rev:
        stale = True
    if stale:
        if rev is None:
            raise PreconditionFailed("The order has changed.", current=row)
        raise PreconditionFailed(f"The session is at rev {rev}.", current_rev=rev, current=row)
