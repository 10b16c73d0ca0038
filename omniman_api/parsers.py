"""A strict JSON parser: the body is read (up to the size limit) before anything is
parsed, and only a JSON object made of plain JSON gets through.

Rejected as ``malformed_request``: bytes that are not UTF-8, text that is not JSON,
``NaN``/``Infinity``, duplicate keys, nesting deeper than :data:`MAX_DEPTH`, a body
that is not an object, lone surrogates and NUL characters. Numbers with a fraction or
an exponent are parsed as exact ``Decimal``; ``ops[N].qty`` keeps that decimal, every
other such number becomes a float. So ``500.0`` as ``unit_price_q`` is never an
integer, and a quantity's digits are exactly the ones the client sent.

A number that is valid JSON is never malformed. The fields that take a number
(``rev``, ``ops[N].qty``, ``ops[N].unit_price_q``) get it whatever its size and check
their own range; anywhere else (free JSON in ``data``, ``meta``, a ``set_data``
value) a number beyond ±(2^53 − 1) (an integer, however it is written: ``1e300`` is
one too; this covers numbers that are not finite as a float) is a ``validation_error``
at its pointer. The walk that finds such a number knows no
pointers, so small bodies pay nothing for them: only a body that holds one is walked
again to name each."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from rest_framework.parsers import BaseParser

from omniman import conf
from omniman.exceptions import FieldError, ValidationError
from omniman_api.errors import MalformedRequest, PayloadTooLarge

MAX_DEPTH = 32
CHUNK = 64 * 1024
MAX_SAFE_INT = 2**53 - 1
# Fields whose own validation checks the range of a number of any size.
TOP_NUMBERS = frozenset({"rev"})
OP_NUMBERS = frozenset({"qty", "unit_price_q"})


class _Duplicate(ValueError):
    pass


class _OutOfRange(Exception):
    """A number out of range somewhere in free JSON; its pointer is found afterwards."""


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
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise _OutOfRange
        return value
    if kind is Decimal:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:  # exact: 1e300 is an integer too
            raise _OutOfRange
        return float(value)
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




def _field_number(value: Any) -> Any:
    """A number for a field that checks its own range: any size, decimals as floats."""
    return float(value) if type(value) is Decimal else value


def _clean(root: dict[str, Any]) -> dict[str, Any]:
    """Check the body; ``ops[N].qty`` keeps its exact decimal, other decimals become floats."""
    try:
        return _clean_walk(root)
    except _OutOfRange:
        raise ValidationError(_out_of_range(root)) from None


def _clean_walk(root: dict[str, Any]) -> dict[str, Any]:
    for key, item in root.items():
        if _bad_string(key):
            raise _bad("The body contains a NUL character or a lone surrogate.")
        if key in TOP_NUMBERS and type(item) in (int, Decimal):
            root[key] = _field_number(item)
            continue
        if key != "ops" or type(item) is not list:
            root[key] = _value(item, 2)
            continue
        for index, op in enumerate(item):
            if type(op) is not dict:
                item[index] = _value(op, 3)
                continue
            for name, field in op.items():
                if _bad_string(name):
                    raise _bad("The body contains a NUL character or a lone surrogate.")
                if name in OP_NUMBERS and type(field) in (int, Decimal):
                    if name != "qty":
                        op[name] = _field_number(field)
                    continue
                op[name] = _value(field, 4)
    return root


def _out_of_range(root: dict[str, Any]) -> list[FieldError]:
    """Every number out of range in free JSON, at its pointer (the slow walk, run only
    when the fast one found one). Values already converted are plain floats or ints."""
    errors: list[FieldError] = []

    def walk(value: Any, pointer: str, depth: int = 2) -> None:
        kind = type(value)
        if depth > MAX_DEPTH + 2:
            raise _bad(f"The body is nested deeper than {MAX_DEPTH} levels.")
        if kind is int and not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            errors.append(FieldError(
                pointer, f"an integer here must be within ±{MAX_SAFE_INT} (2^53 − 1).", "max_value"))
        elif kind is Decimal and not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            errors.append(FieldError(
                pointer, f"a number here must be within ±{MAX_SAFE_INT} (2^53 − 1).", "max_value"))
        elif kind is dict:
            for key, item in value.items():
                walk(item, f"{pointer}/{_escape(key)}", depth + 1)
        elif kind is list:
            for index, item in enumerate(value):
                walk(item, f"{pointer}/{index}", depth + 1)

    for key, item in root.items():
        if key in TOP_NUMBERS:
            continue
        if key == "ops" and type(item) is list:
            for index, op in enumerate(item):
                if type(op) is not dict:
                    walk(op, f"/ops/{index}", 3)
                    continue
                for name, field in op.items():
                    if name not in OP_NUMBERS:
                        walk(field, f"/ops/{index}/{_escape(name)}", 4)
            continue
        walk(item, f"/{_escape(key)}")
    return errors


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


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
