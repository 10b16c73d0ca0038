"""A strict JSON parser: the body is read (up to the size limit) before anything is
parsed, and only a JSON object made of plain JSON gets through.

Rejected as ``malformed_request``: bytes that are not UTF-8, text that is not JSON,
``NaN``/``Infinity``, duplicate keys, nesting deeper than :data:`MAX_DEPTH`, a body
that is not an object, numbers no database column can hold, lone surrogates and NUL
characters. Numbers with a fraction or an exponent are parsed as exact ``Decimal``;
``ops[N].qty`` keeps that decimal, every other such number (free JSON in ``data`` or
``meta``) becomes a float. So ``500.0`` as ``unit_price_q`` is never an integer, and a
quantity's digits are exactly the ones the client sent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from rest_framework.parsers import BaseParser

from omniman import conf
from omniman.exceptions import MalformedRequest
from omniman_api.errors import PayloadTooLarge

MAX_DEPTH = 32
CHUNK = 64 * 1024
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bad_string(value: str) -> bool:
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(root: dict[str, Any]) -> dict[str, Any]:
    """Check depth, numbers and strings; turn decimals outside ``ops[N].qty`` into floats."""
    # stack of (container, key, value, depth, path-is-ops-item)
    stack: list[tuple[Any, Any, Any, int, tuple[Any, ...]]] = [(None, None, root, 1, ())]
    while stack:
        parent, key, value, depth, path = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"The body is nested deeper than {MAX_DEPTH} levels.")
            for k, v in value.items():
                if _bad_string(k):
                    raise MalformedRequest("The body contains a NUL character or a lone surrogate.")
                stack.append((value, k, v, depth + 1, (*path[-2:], k)))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"The body is nested deeper than {MAX_DEPTH} levels.")
            for i, v in enumerate(value):
                stack.append((value, i, v, depth + 1, (*path[-2:], i)))
        elif isinstance(value, str):
            if _bad_string(value):
                raise MalformedRequest("The body contains a NUL character or a lone surrogate.")
        elif isinstance(value, Decimal):
            if not (len(path) == 3 and path[0] == "ops" and path[2] == "qty" and depth == 4):
                number = float(value)
                if number in (float("inf"), float("-inf")):
                    raise MalformedRequest("The body contains a number out of range.")
                parent[key] = number
        elif isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
            raise MalformedRequest("The body contains an integer out of range.")
    return root


def drain(stream: Any) -> None:
    """Read and drop the rest of a request body, so the client gets our answer
    instead of a connection reset."""
    if stream is None:
        return
    while stream.read(CHUNK):
        pass


def read_body(stream: Any, meta: dict[str, Any]) -> bytes:
    """The body, or ``PayloadTooLarge`` once it is over ``MAX_BODY_BYTES`` (read and
    dropped first)."""
    limit = conf.get("MAX_BODY_BYTES")
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        drain(stream)
        raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    if stream is None:
        return b""
    chunks = []
    size = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            drain(stream)
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    return b"".join(chunks)


def loads(raw: bytes) -> dict[str, Any]:
    """Strict JSON object from bytes; any problem is ``MalformedRequest``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("The request body is not UTF-8.") from None
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_float=Decimal, parse_constant=_constant)
    except _Duplicate as exc:
        raise MalformedRequest(f"The request body has a {exc}.") from None
    except RecursionError:
        raise MalformedRequest(f"The body is nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise MalformedRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    return _clean(value)


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        charset = ""
        if media_type and "charset=" in media_type.lower():
            charset = media_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip('"')
        if charset and charset not in ("utf-8", "utf8"):
            drain(stream)
            raise MalformedRequest("The request body must be UTF-8.")
        raw = read_body(stream, meta)
        if not raw.strip():
            return {}
        return loads(raw)
