"""Cursor pagination, newest first on the unique, increasing primary key.

A page is one indexed range query (``id < x ORDER BY id DESC LIMIT n+1``), so page
1,000 costs what page 1 costs, and rows inserted meanwhile never shift a page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet

from omniman.exceptions import FieldError, ValidationError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# A cursor is a kind letter and a position of at most 18 digits (below 2^63): the
# OpenAPI document declares this pattern, so every cursor it allows is one we accept.
CURSOR_RE = re.compile(r"([a-z])([0-9]{1,18})\Z")
PAGE_SIZE_RE = re.compile(r"[0-9]+\Z")


def encode_cursor(kind: str, value: int) -> str:
    return f"{kind}{value}"


def decode_cursor(raw: str, kinds: str, pointer: str = "/cursor") -> tuple[str, int]:
    """(kind, value) from a cursor; anything else is a validation error."""
    match = CURSOR_RE.match(raw)
    if match is None or match.group(1) not in kinds:
        raise ValidationError(FieldError(pointer, "not a valid cursor.", "invalid"))
    return match.group(1), int(match.group(2))


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


def paginate(request: Any, qs: QuerySet[Any]) -> Page:
    """One page of ``qs``, newest first; ``cursor`` and ``page_size`` from the query."""
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
