"""Cursor pagination, newest first on the unique, increasing primary key.

A page is one indexed range query (``id < x ORDER BY id DESC LIMIT n+1``), so page
1,000 costs what page 1 costs, and rows inserted meanwhile never shift a page."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet

from omniman.exceptions import FieldError, ValidationError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_ID = 2**63 - 1


def encode_cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).decode().rstrip("=")


def decode_cursor(raw: str, kinds: str, pointer: str = "/cursor") -> tuple[str, int]:
    """(kind, value) from an opaque cursor; anything else is a validation error."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        kind, value = text[0], int(text[1:])
        if kind not in kinds or not text[1:].isdigit() or not 0 <= value <= MAX_ID:
            raise ValueError
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ValidationError(FieldError(pointer, "not a valid cursor.", "invalid")) from None
    return kind, value


def page_size(request: Any) -> int:
    raw = request.query_params.get("page_size")
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or int(raw) < 1:
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
    return request.build_absolute_uri(request.path) + "?" + query


def paginate(request: Any, qs: QuerySet) -> Page:
    """One page of ``qs``, newest first; ``cursor`` and ``page_size`` from the query."""
    size = page_size(request)
    raw = request.query_params.get("cursor")
    if raw:
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
