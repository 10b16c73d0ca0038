"""ETags and the conditional headers of RFC 9110: ``If-Match`` (strong comparison,
one tag, a list, or ``*``) and ``If-None-Match`` (weak comparison).

The kernel speaks in integers (:mod:`omniman.services.preconditions`): a session's
ETag is ``"s{id}.{rev}.{version}"``, an order's ``"o{id}.{version}"``, and
``If-Match`` becomes the :class:`~omniman.services.preconditions.Version` values its
tags name, which the kernel compares with the row it locks."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from omniman.models import Order, Session
from omniman.services.preconditions import ANY_VERSION, Version

_TAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')
_NUMBER = r"(0|[1-9][0-9]*)"
_SESSION_TAG = re.compile(rf'"s{_NUMBER}\.{_NUMBER}\.{_NUMBER}"\Z')
_ORDER_TAG = re.compile(rf'"o{_NUMBER}\.{_NUMBER}"\Z')


def etag(row: Session | Order) -> str:
    """A strong, quoted ETag: changes exactly when the representation changes."""
    if isinstance(row, Session):
        return f'"s{row.pk}.{row.rev}.{row.version}"'
    return f'"o{row.pk}.{row.version}"'


def parse_tags(header: str | None) -> list[str] | None:
    """The entity tags of a conditional header: None when absent, ``["*"]`` for any.

    Tags keep their ``W/`` prefix, so a weak tag never matches strongly. A header
    that holds no valid tag gives ``[]``... never a match, except that an empty
    header counts as absent."""
    if header is None:
        return None
    header = header.strip()
    if not header:
        return None
    if header == "*":
        return ["*"]
    tags = []
    pos = 0
    while pos < len(header):
        match = _TAG.match(header, pos)
        if match is None:
            # Not a valid list: keep an impossible tag so the condition fails.
            return ["\x00invalid"]
        tags.append(match.group(1))
        pos = match.end()
    return tags


def if_match(request: Any, kind: type[Session] | type[Order] = Session) -> Collection[Version] | None:
    """The versions ``If-Match`` accepts for a ``kind`` row: None when absent,
    ``ANY_VERSION`` for ``*``, else the versions its strong tags of that kind name (none,
    when no tag is one: the condition then fails)."""
    tags = parse_tags(request.META.get("HTTP_IF_MATCH"))
    if tags is None:
        return None
    if tags == ["*"]:
        return ANY_VERSION
    return frozenset(version for tag in tags if (version := _version(tag, kind)) is not None)


def _version(tag: str, kind: type[Session] | type[Order]) -> Version | None:
    if kind is Session:
        match = _SESSION_TAG.match(tag)
        return None if match is None else Version(*map(int, match.groups()))
    match = _ORDER_TAG.match(tag)
    return None if match is None else Version(int(match.group(1)), 0, int(match.group(2)))


def none_match(request: Any, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (weak comparison): answer 304."""
    tags = parse_tags(request.META.get("HTTP_IF_NONE_MATCH"))
    if not tags:
        return False
    if tags == ["*"]:
        return True
    bare = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == bare for tag in tags)
