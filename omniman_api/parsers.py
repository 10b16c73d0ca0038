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


def _bad(detail: str) -> MalformedRequest:
    return MalformedRequest(detail)


def _value(value: Any, depth: int) -> Any:
    """``value`` checked (depth, numbers, strings), decimals turned into floats."""
    kind = type(value)
    if kind is str:
        if _bad_string(value):
            raise _bad("The body contains a NUL character or a lone surrogate.")
        return value
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _bad("The body contains an integer out of range.")
        return value
    if kind is Decimal:
        number = float(value)
        if number in (_INF, -_INF):
            raise _bad("The body contains a number out of range.")
        return number
    if kind is dict:
        if depth > MAX_DEPTH:
            raise _bad(f"The body is nested deeper than {MAX_DEPTH} levels.")
        for key, item in value.items():
            if _bad_string(key):
                raise _bad("The body contains a NUL character or a lone surrogate.")
            value[key] = _value(item, depth + 1)
        return value
    if kind is list:
        if depth > MAX_DEPTH:
            raise _bad(f"The body is nested deeper than {MAX_DEPTH} levels.")
        for index, item in enumerate(value):
            value[index] = _value(item, depth + 1)
        return value
    return value  # True, False, None


_INF = float("inf")


def _clean(root: dict[str, Any]) -> dict[str, Any]:
    """Check the body; ``ops[N].qty`` keeps its exact decimal, other decimals become floats."""
    for key, item in root.items():
        if _bad_string(key):
            raise _bad("The body contains a NUL character or a lone surrogate.")
        if key != "ops" or type(item) is not list:
            root[key] = _value(item, 2)
            continue
        for index, op in enumerate(item):
            if type(op) is not dict:
                item[index] = _value(op, 3)
                continue
            for name, field in op.items():
                if name == "qty" and type(field) is Decimal:
                    continue
                if _bad_string(name):
                    raise _bad("The body contains a NUL character or a lone surrogate.")
                op[name] = _value(field, 4)
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
