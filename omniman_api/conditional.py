"""ETags and the conditional headers of RFC 9110: ``If-Match`` (strong comparison,
one tag, a list, or ``*``) and ``If-None-Match`` (weak comparison)."""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')


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


def if_match(request: Any) -> list[str] | None:
    return parse_tags(request.META.get("HTTP_IF_MATCH"))


def none_match(request: Any, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (weak comparison): answer 304."""
    tags = parse_tags(request.META.get("HTTP_IF_NONE_MATCH"))
    if not tags:
        return False
    if tags == ["*"]:
        return True
    bare = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == bare for tag in tags)
