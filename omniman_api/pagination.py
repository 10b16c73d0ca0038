"""Cursor pagination, newest first on the unique, increasing primary key (oldest
first where a list says so).

A page is one indexed range query (``id < x ORDER BY id DESC LIMIT n+1``), so page
1,000 costs what page 1 costs, and rows inserted meanwhile never shift a page.

The order stream's cursor is another kind (:func:`encode_stream_cursor`)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from django.db.models import QuerySet

from omniman.exceptions import FieldError, ValidationError
from omniman.validators import IDENT_RE

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# A cursor is a kind letter and a position of at most 18 digits (below 2^63): the
# OpenAPI document declares this pattern, so every cursor it allows is one we accept.
CURSOR_RE = re.compile(r"([a-z])([0-9]{1,18})\Z")
PAGE_SIZE_RE = re.compile(r"[0-9]+\Z")
# The stream's cursor: base64url (no padding) of a JSON object, channel code → the
# channel's last position read. At most this many characters (about 150 channels).
STREAM_CURSOR_MAX = 16384
STREAM_CURSOR_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{STREAM_CURSOR_MAX}}}\Z")
MAX_POSITION = 2**53 - 1  # what a JSON client reads exactly
# The stream cursor from before positions per channel: "q" and a number.
OLD_STREAM_CURSOR_RE = re.compile(r"q[0-9]{1,18}\Z")


def encode_cursor(kind: str, value: int) -> str:
    return f"{kind}{value}"


def decode_cursor(raw: str, kinds: str, pointer: str = "/cursor") -> tuple[str, int]:
    """(kind, value) from a cursor; anything else is a validation error."""
    match = CURSOR_RE.match(raw)
    if match is None or match.group(1) not in kinds:
        raise ValidationError(FieldError(pointer, "not a valid cursor.", "invalid"))
    return match.group(1), int(match.group(2))


def encode_stream_cursor(positions: dict[str, int]) -> str:
    """The stream's opaque cursor for ``positions`` (channel code → last position read;
    a channel left out is read from its first order)."""
    raw = orjson.dumps({code: seq for code, seq in positions.items() if seq > 0}, option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_stream_cursor(raw: str, pointer: str = "/after") -> dict[str, int]:
    """The positions of a stream cursor; anything else is a validation error (one of the
    old ``q<number>`` form says so)."""
    if OLD_STREAM_CURSOR_RE.match(raw):
        raise ValidationError(FieldError(
            pointer, "this stream cursor is of the old, installation-wide form, no longer accepted: "
            "read the stream once without after and follow the cursor it gives.", "old_cursor"))
    invalid = ValidationError(FieldError(pointer, "not a valid stream cursor.", "invalid"))
    if not STREAM_CURSOR_RE.match(raw):
        raise invalid
    try:
        positions = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(positions, dict) or not all(
        IDENT_RE.match(code) and type(seq) is int and 0 <= seq <= MAX_POSITION for code, seq in positions.items()
    ):
        raise invalid
    return positions


def page_size(request: Any) -> int:
    """``page_size`` from the query: an integer ≥ 1 (above the cap, the cap)."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not PAGE_SIZE_RE.match(raw) or int(raw) < 1:
        raise ValidationError(FieldError("/page_size", "page_size must be a positive integer.", "invalid"))
    return min(int(raw), MAX_PAGE_SIZE)


@dataclass
class Page:
    rows: list[Any]
    next: str | None
    previous: str | None

    def body(self, results: list[Any]) -> dict[str, Any]:
        return {"next": self.next, "previous": self.previous, "results": results}


def _url(request: Any, cursor: str) -> str:
    params = request.query_params.copy()
    params["cursor"] = cursor
    query = urlencode(sorted(params.lists()), doseq=True)
    return f"{request.build_absolute_uri(request.path)}?{query}"


def paginate(request: Any, qs: QuerySet[Any], *, oldest_first: bool = False) -> Page:
    """One page of ``qs``, newest first (or oldest first); ``cursor`` and ``page_size``
    from the query."""
    if oldest_first:
        return _paginate_up(request, qs)
    size = page_size(request)
    raw = request.query_params.get("cursor")
    if raw is not None:
        kind, pivot = decode_cursor(raw, "np")
    else:
        kind, pivot = "n", None
    if kind == "n":
        page_qs = qs.filter(id__lt=pivot) if pivot is not None else qs
        rows = list(page_qs.order_by("-id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        nxt = encode_cursor("n", rows[-1].pk) if more and rows else None
        prev = encode_cursor("p", rows[0].pk) if pivot is not None and rows else None
        if pivot is not None and not rows:
            prev = encode_cursor("p", pivot - 1) if pivot > 0 else None
    else:
        assert pivot is not None  # a previous-page cursor always carries its pivot
        rows = list(qs.filter(id__gt=pivot).order_by("id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        prev = encode_cursor("p", rows[0].pk) if more and rows else None
        nxt = encode_cursor("n", rows[-1].pk) if rows else encode_cursor("n", pivot + 1)
    return Page(
        rows=rows,
        next=_url(request, nxt) if nxt else None,
        previous=_url(request, prev) if prev else None,
    )


def _paginate_up(request: Any, qs: QuerySet[Any]) -> Page:
    """:func:`paginate` oldest first: a next page has greater ids, a previous one smaller."""
    size = page_size(request)
    raw = request.query_params.get("cursor")
    kind, pivot = decode_cursor(raw, "np") if raw is not None else ("n", None)
    if kind == "n":
        rows = list((qs.filter(id__gt=pivot) if pivot is not None else qs).order_by("id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        nxt = encode_cursor("n", rows[-1].pk) if more and rows else None
        prev = encode_cursor("p", rows[0].pk) if pivot is not None and rows else None
        if pivot is not None and not rows:
            prev = encode_cursor("p", pivot + 1)
    else:
        assert pivot is not None  # a previous-page cursor always carries its pivot
        rows = list(qs.filter(id__lt=pivot).order_by("-id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size][::-1]
        prev = encode_cursor("p", rows[0].pk) if more and rows else None
        nxt = encode_cursor("n", rows[-1].pk) if rows else encode_cursor("n", max(pivot - 1, 0))
    return Page(
        rows=rows,
        next=_url(request, nxt) if nxt else None,
        previous=_url(request, prev) if prev else None,
    )
