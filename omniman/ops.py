"""The op engine: op schemas and pure functions over a session's state.

``parse_ops`` checks the shape of a raw op list once; ``apply_ops`` applies parsed ops
to a copy of the state and returns the new one, or raises ``ValidationError`` naming
the op index and field. The stored state is never touched: a rejected modify leaves
it byte-for-byte equal. Nothing here reads the database.

A state is *complete* (every line) or *partial*: only the lines the ops may touch
(:func:`touched_line_ids`), with the session's ``line_count`` and ``subtotal_q``, which
is all most ops need, so a modify costs the same on a 1-line and a 500-line session. A
partial state records which ids were looked up (``loaded``); when an op needs a line
outside them (``merge_lines`` needs all of them, and a stored line that holds a
server-made id not handed out yet pushes the next one further), ``apply_ops`` raises
``IncompleteState`` and the caller runs it again on the complete state. The result carries a ``LineDiff``: the lines to insert
or update and the line ids to delete, net per line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from omniman.exceptions import FieldError, ValidationError
from omniman.money import (
    MAX_QTY,
    MAX_SAFE_Q,
    MoneyError,
    format_qty,
    line_total_q,
    parse_amount_q,
    parse_qty,
)
from omniman.validators import IDENT_RE

# A line id of the server's own form (L1, L2, ...): a client that sends one moves
# ``next_line`` past it, so server-made ids never need to skip a taken one.
AUTO_ID_RE = re.compile(r"^L([1-9][0-9]{0,8})\Z")
PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
MAX_PATH_SEGMENTS = 5

# op name -> (required fields, optional fields)
OP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "add_line": (frozenset({"sku", "qty"}), frozenset({"unit_price_q", "meta", "line_id"})),
    "remove_line": (frozenset({"line_id"}), frozenset()),
    "set_qty": (frozenset({"line_id", "qty"}), frozenset()),
    "replace_sku": (frozenset({"line_id", "sku"}), frozenset({"unit_price_q"})),
    "set_price": (frozenset({"line_id", "unit_price_q"}), frozenset()),
    "set_data": (frozenset({"path", "value"}), frozenset()),
    "merge_lines": (frozenset(), frozenset()),
}
OP_NAMES = tuple(OP_FIELDS)


@dataclass(frozen=True)
class Op:
    """One parsed op: ``index`` is its position in the request, for error pointers."""

    index: int
    op: str
    sku: str | None = None
    qty: Decimal | None = None
    unit_price_q: int | None = None
    meta: dict[str, Any] | None = None
    line_id: str | None = None
    path: tuple[str, ...] = ()
    value: Any = None

    def pointer(self, name: str | None = None) -> str:
        return f"/ops/{self.index}" + (f"/{name}" if name else "")


@dataclass(frozen=True)
class Limits:
    max_ops: int = 100
    max_lines: int = 500
    max_data_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        from omniman import conf

        return cls(
            max_ops=conf.get("MAX_OPS_PER_MODIFY"),
            max_lines=conf.get("MAX_LINES_PER_SESSION"),
            max_data_bytes=conf.get("MAX_DATA_BYTES"),
        )


@dataclass(frozen=True)
class Adjustment:
    """What a modifier adds to the subtotal (negative for a discount)."""

    code: str
    label: str
    amount_q: int

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "amount_q": self.amount_q}


Modifier = Callable[[Mapping[str, Any]], Sequence[Adjustment]]


class IncompleteState(Exception):
    """A partial state lacks a line an op needs: run again with every line."""


@dataclass(frozen=True)
class LineDiff:
    """What a modify changes in the stored lines, net per line id.

    ``upserts``: every line that is new or changed (each once); ``added``: the ids among
    them that go last in display order (new lines, and lines removed and added again),
    in that order; ``deletes``: ids of stored lines that are gone."""

    upserts: list[dict[str, Any]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


@dataclass
class State:
    """A session's mutable state as plain data. ``items`` lines are never mutated in place.

    Complete (``loaded`` is None): ``items`` is every line in display order, and
    ``line_count``/``subtotal_q`` default to their count and sum. Partial: ``items`` holds
    only the lines found among the ids in ``loaded``; ``line_count`` and ``subtotal_q``
    are the whole session's."""

    items: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    pricing: dict[str, Any] = field(default_factory=dict)
    total_q: int = 0
    next_line: int = 1
    line_count: int = -1
    subtotal_q: int = -1
    loaded: frozenset[str] | None = None
    # Set by apply_ops on the state it returns.
    diff: LineDiff | None = None

    def __post_init__(self) -> None:
        if self.line_count < 0:
            self.line_count = len(self.items)
        if self.subtotal_q < 0:
            self.subtotal_q = sum(line["line_total_q"] for line in self.items)

    @property
    def complete(self) -> bool:
        return self.loaded is None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> State:
        return cls(
            items=raw.get("items") or [],
            data=raw.get("data") or {},
            pricing=raw.get("pricing") or {},
            total_q=raw.get("total_q", 0),
            next_line=raw.get("next_line", 1),
        )

    @classmethod
    def partial(
        cls,
        lines: list[dict[str, Any]],
        *,
        loaded: Iterable[str],
        line_count: int,
        subtotal_q: int,
        data: dict[str, Any],
        pricing: dict[str, Any],
        total_q: int,
        next_line: int,
    ) -> State:
        """The lines found among the ids ``loaded`` (which must include every id of
        ``lines``) and the session's aggregates."""
        return cls(
            items=lines, data=data, pricing=pricing, total_q=total_q, next_line=next_line,
            line_count=line_count, subtotal_q=subtotal_q, loaded=frozenset(loaded),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "data": self.data,
            "pricing": self.pricing,
            "total_q": self.total_q,
            "next_line": self.next_line,
        }


def touched_line_ids(ops: Sequence[Op]) -> tuple[set[str], int]:
    """The line ids ``ops`` may touch, known before the session is read: the ids they
    name, and the server-made ids they may take. Those are ``auto`` ids counted from the
    session's ``next_line`` (returned as a count, since ``next_line`` is read with the
    lock), or, after a client's id of the server's form ``L{n}`` (which moves
    ``next_line`` past it), ids from ``L{n + 1}`` on, listed among the ids. A partial state
    holding these needs no more (``merge_lines`` aside, which needs every line), unless a
    line written behind the kernel's back holds a server-made id not handed out yet."""
    ids = {op.line_id for op in ops if op.line_id is not None}
    auto = sum(1 for op in ops if op.op == "add_line" and op.line_id is None)
    if auto:
        for op in ops:
            match = AUTO_ID_RE.match(op.line_id or "") if op.op == "add_line" else None
            if match is not None:
                ids.update(f"L{int(match.group(1)) + n}" for n in range(1, auto + 1))
    return ids, auto


def needs_all_lines(ops: Sequence[Op]) -> bool:
    return any(op.op == "merge_lines" for op in ops)


def escape_pointer(token: str) -> str:
    """One RFC 6901 reference token: ``~`` → ``~0``, ``/`` → ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def _err(pointer: str, detail: str, code: str = "invalid") -> ValidationError:
    return ValidationError(FieldError(pointer, detail, code))


def _ident(value: Any, pointer: str, name: str) -> str:
    if not isinstance(value, str) or not IDENT_RE.match(value):
        raise _err(pointer, f"{name} must be 1 to 64 characters of [A-Za-z0-9._:-].")
    return value


def _qty(value: Any, pointer: str, *, allow_zero: bool = False) -> Decimal:
    try:
        return parse_qty(value, allow_zero=allow_zero)
    except MoneyError as exc:
        raise _err(pointer, exc.detail, exc.code) from None


def _price(value: Any, pointer: str) -> int:
    try:
        return parse_amount_q(value)
    except MoneyError as exc:
        raise _err(pointer, f"unit_price_q {exc.detail}", exc.code) from None


def _path(value: Any, pointer: str) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise _err(pointer, "path must be a dotted string such as \"table.guests\".", "invalid_type")
    parts = tuple(value.split("."))
    if len(parts) > MAX_PATH_SEGMENTS or not all(PATH_SEGMENT_RE.match(p) for p in parts):
        raise _err(
            pointer,
            f"path must be 1 to {MAX_PATH_SEGMENTS} dot-separated segments of [A-Za-z0-9_-].",
        )
    return parts


def parse_ops(raw: Any, *, limits: Limits | None = None) -> list[Op]:
    """Check the shape of a raw op list and return typed ops; the first error stops."""
    limits = limits or Limits.from_settings()
    if not isinstance(raw, list):
        raise _err("/ops", "ops must be a list of ops.", "invalid_type")
    if not raw:
        raise _err("/ops", "ops must not be empty.", "empty")
    if len(raw) > limits.max_ops:
        raise _err("/ops", f"at most {limits.max_ops} ops per modify.", "max_length")
    parsed = []
    for index, item in enumerate(raw):
        base = f"/ops/{index}"
        if not isinstance(item, dict):
            raise _err(base, "each op must be an object.", "invalid_type")
        name = item.get("op")
        if not isinstance(name, str) or name not in OP_FIELDS:
            raise _err(
                f"{base}/op",
                f"unknown op; one of: {', '.join(OP_NAMES)}.",
                "unknown_op" if isinstance(name, str) else "required" if name is None else "invalid_type",
            )
        required, optional = OP_FIELDS[name]
        for key in item:
            if key != "op" and key not in required and key not in optional:
                raise _err(
                    f"{base}/{escape_pointer(str(key))}", f"unknown field for {name}.", "unknown_field"
                )
        for key in sorted(required):
            if key not in item:
                raise _err(f"{base}/{key}", f"{key} is required for {name}.", "required")
        kwargs: dict[str, Any] = {}
        if "sku" in item:
            kwargs["sku"] = _ident(item["sku"], f"{base}/sku", "sku")
        if "line_id" in item:
            kwargs["line_id"] = _ident(item["line_id"], f"{base}/line_id", "line_id")
        if "qty" in item:
            kwargs["qty"] = _qty(item["qty"], f"{base}/qty", allow_zero=name == "set_qty")
        if "unit_price_q" in item:
            kwargs["unit_price_q"] = _price(item["unit_price_q"], f"{base}/unit_price_q")
        if "meta" in item:
            if not isinstance(item["meta"], dict):
                raise _err(f"{base}/meta", "meta must be an object.", "invalid_type")
            kwargs["meta"] = item["meta"]
        if name == "set_data":
            kwargs["path"] = _path(item["path"], f"{base}/path")
            kwargs["value"] = item["value"]
        parsed.append(Op(index=index, op=name, **kwargs))
    return parsed


def skus_to_price(ops: Sequence[Op]) -> set[str]:
    """The skus whose catalog price an internal-pricing channel must look up."""
    return {op.sku for op in ops if op.op in ("add_line", "replace_sku") and op.sku}


def _make_line(line_id: str, sku: str, qty: Decimal, price: int, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": sku,
        "qty": format_qty(qty),
        "unit_price_q": price,
        "line_total_q": line_total_q(qty, price),
        "meta": meta,
    }


_ABSENT: dict[str, Any] = {}  # "no such line before this modify", for the diff


class _Engine:
    def __init__(
        self,
        state: State,
        *,
        pricing_policy: str,
        prices: Mapping[str, int] | None,
        limits: Limits,
    ) -> None:
        self.lines: dict[str, dict[str, Any]] = {line["line_id"]: line for line in state.items}
        self.loaded = state.loaded
        self.count = state.line_count
        self.data = state.data
        self.data_copied = False
        self.subtotal = state.subtotal_q
        self.next_line = state.next_line
        self.internal = pricing_policy == "internal"
        self.prices = prices or {}
        self.limits = limits
        # line id -> the line before this modify (or _ABSENT), for every line touched.
        self.before: dict[str, dict[str, Any]] = {}
        # Ids that go last in display order, in order (a dict as an ordered set).
        self.added: dict[str, None] = {}

    def known(self, line_id: str) -> None:
        """Whether ``line_id`` exists is known: else the state is too partial."""
        if self.loaded is not None and line_id not in self.loaded and line_id not in self.before:
            raise IncompleteState(line_id)

    def touch(self, line_id: str) -> None:
        if line_id not in self.before:
            self.before[line_id] = self.lines.get(line_id, _ABSENT)

    def line(self, op: Op) -> dict[str, Any]:
        assert op.line_id is not None
        self.known(op.line_id)
        try:
            return self.lines[op.line_id]
        except KeyError:
            raise _err(op.pointer("line_id"), f"no line {op.line_id!r} in this session.", "unknown_line") from None

    def diff(self) -> LineDiff:
        upserts, deletes = [], []
        for line_id, old in self.before.items():
            new = self.lines.get(line_id)
            if new is None:
                if old is not _ABSENT:
                    deletes.append(line_id)
            elif line_id in self.added or new != old:
                upserts.append(new)
        return LineDiff(upserts=upserts, added=list(self.added), deletes=deletes)

    def catalog_price(self, op: Op) -> int:
        if op.unit_price_q is not None:
            raise _err(
                op.pointer("unit_price_q"),
                "this channel prices from its catalog; do not send unit_price_q.",
                "not_allowed",
            )
        assert op.sku is not None
        price = self.prices.get(op.sku)
        if price is None:
            raise _err(op.pointer("sku"), f"unknown sku {op.sku!r} in this channel's catalog.", "unknown_sku")
        return price

    def put(self, op: Op, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        delta = (new["line_total_q"] if new else 0) - (old["line_total_q"] if old else 0)
        subtotal = self.subtotal + delta
        if subtotal > MAX_SAFE_Q or (new and new["line_total_q"] > MAX_SAFE_Q):
            raise _err(op.pointer(), f"the total would exceed {MAX_SAFE_Q}.", "max_total")
        self.subtotal = subtotal
        if new is None:
            assert old is not None
            self.touch(old["line_id"])
            del self.lines[old["line_id"]]
            self.added.pop(old["line_id"], None)
            self.count -= 1
        else:
            self.touch(new["line_id"])
            if old is None:
                self.count += 1
                self.added[new["line_id"]] = None
            self.lines[new["line_id"]] = new

    def apply(self, op: Op) -> None:
        getattr(self, f"op_{op.op}")(op)

    def op_add_line(self, op: Op) -> None:
        assert op.sku is not None and op.qty is not None
        if self.internal:
            price = self.catalog_price(op)
        elif op.unit_price_q is None:
            raise _err(op.pointer("unit_price_q"), "unit_price_q is required on this channel.", "required")
        else:
            price = op.unit_price_q
        if op.line_id is not None:
            self.known(op.line_id)
            if op.line_id in self.lines:
                raise _err(op.pointer("line_id"), f"line {op.line_id!r} already exists.", "duplicate")
            line_id = op.line_id
            auto = AUTO_ID_RE.match(line_id)
            if auto is not None and int(auto.group(1)) >= self.next_line:
                self.next_line = int(auto.group(1)) + 1
        else:
            line_id = f"L{self.next_line}"
            self.known(line_id)
            while line_id in self.lines:
                self.next_line += 1
                line_id = f"L{self.next_line}"
                self.known(line_id)
            self.next_line += 1
        if self.count >= self.limits.max_lines:
            raise _err(op.pointer(), f"at most {self.limits.max_lines} lines per session.", "max_lines")
        self.put(op, None, _make_line(line_id, op.sku, op.qty, price, op.meta or {}))

    def op_remove_line(self, op: Op) -> None:
        self.put(op, self.line(op), None)

    def op_set_qty(self, op: Op) -> None:
        assert op.qty is not None
        old = self.line(op)
        if op.qty == 0:
            self.put(op, old, None)
            return
        self.put(op, old, _make_line(old["line_id"], old["sku"], op.qty, old["unit_price_q"], old["meta"]))

    def op_replace_sku(self, op: Op) -> None:
        assert op.sku is not None
        old = self.line(op)
        if self.internal:
            price = self.catalog_price(op)
        else:
            price = old["unit_price_q"] if op.unit_price_q is None else op.unit_price_q
        qty = Decimal(old["qty"])
        self.put(op, old, _make_line(old["line_id"], op.sku, qty, price, old["meta"]))

    def op_set_price(self, op: Op) -> None:
        assert op.unit_price_q is not None
        if self.internal:
            raise _err(op.pointer("op"), "set_price is for external pricing channels only.", "not_allowed")
        old = self.line(op)
        qty = Decimal(old["qty"])
        self.put(op, old, _make_line(old["line_id"], old["sku"], qty, op.unit_price_q, old["meta"]))

    def op_set_data(self, op: Op) -> None:
        if not self.data_copied:
            self.data = orjson.loads(orjson.dumps(self.data))
            self.data_copied = True
        node = self.data
        for depth, segment in enumerate(op.path[:-1]):
            child = node.get(segment)
            if child is None:
                if op.value is None:
                    return  # deleting under a missing key: nothing to do
                child = node[segment] = {}
            elif not isinstance(child, dict):
                where = ".".join(op.path[: depth + 1])
                raise _err(op.pointer("path"), f"{where!r} is not an object.", "not_an_object")
            node = child
        last = op.path[-1]
        if op.value is None:
            node.pop(last, None)
        else:
            node[last] = op.value
        try:
            size = len(orjson.dumps(self.data))
        except (TypeError, orjson.JSONEncodeError):
            raise _err(op.pointer("value"), "value is not valid JSON.", "invalid") from None
        if size > self.limits.max_data_bytes:
            raise _err(op.pointer("value"), f"data would exceed {self.limits.max_data_bytes} bytes.", "max_size")

    def op_merge_lines(self, op: Op) -> None:
        """Merge lines with equal sku, unit price and meta into the first of them.

        ``total_q`` never changes. A group whose merged line would not keep the sum
        of its line totals (fractional quantities, each rounded half-even on its own)
        or would exceed the maximum qty is left as it is. Needs every line."""
        if self.loaded is not None:
            raise IncompleteState("merge_lines")
        groups: dict[tuple[str, int, bytes], list[dict[str, Any]]] = {}
        keys: dict[str, tuple[str, int, bytes]] = {}
        for line in self.lines.values():
            key = (line["sku"], line["unit_price_q"], orjson.dumps(line["meta"], option=orjson.OPT_SORT_KEYS))
            groups.setdefault(key, []).append(line)
            keys[line["line_id"]] = key
        combined: dict[tuple[str, int, bytes], dict[str, Any]] = {}
        for key, group in groups.items():
            if len(group) < 2:
                continue
            first = group[0]
            qty = sum((Decimal(part["qty"]) for part in group), Decimal(0))
            if qty > MAX_QTY:
                continue
            line = _make_line(first["line_id"], first["sku"], qty, first["unit_price_q"], first["meta"])
            if line["line_total_q"] == sum(part["line_total_q"] for part in group):
                combined[key] = line
        if not combined:
            return
        merged: dict[str, dict[str, Any]] = {}
        for line_id, line in self.lines.items():
            new = combined.get(keys[line_id])
            if new is None:
                merged[line_id] = line
                continue
            self.touch(line_id)
            if new["line_id"] == line_id:
                merged[line_id] = new
            else:
                self.added.pop(line_id, None)
                self.count -= 1
        self.lines = merged


def apply_ops(
    state: State,
    ops: Sequence[Op],
    *,
    pricing_policy: str = "external",
    prices: Mapping[str, int] | None = None,
    modifiers: Sequence[Modifier] = (),
    limits: Limits | None = None,
) -> State:
    """Apply every op to a copy of ``state``; all apply or a ``ValidationError`` is raised.

    The new state's ``diff`` says which lines to write. When ``state`` is partial, the
    new ``items`` are the loaded lines only, and ``IncompleteState`` is raised when an
    op (or a modifier, which sees every line) needs more."""
    if modifiers and not state.complete:
        raise IncompleteState("modifiers")
    engine = _Engine(state, pricing_policy=pricing_policy, prices=prices, limits=limits or Limits.from_settings())
    for op in ops:
        engine.apply(op)
    items = list(engine.lines.values())
    new = State(
        items=items, data=engine.data, pricing={}, total_q=0, next_line=engine.next_line,
        line_count=engine.count, subtotal_q=engine.subtotal, loaded=state.loaded, diff=engine.diff(),
    )
    if new.loaded is not None:
        new.loaded = new.loaded | frozenset(engine.before)
    return price_state(new, subtotal_q=engine.subtotal, modifiers=modifiers,
                       pointer=f"/ops/{len(ops) - 1}" if ops else "/ops")


def price_state(
    state: State,
    *,
    subtotal_q: int | None = None,
    modifiers: Sequence[Modifier] = (),
    pointer: str = "/ops",
) -> State:
    """Fill ``pricing`` and ``total_q``: the sum of line totals plus every adjustment."""
    if subtotal_q is None:
        subtotal_q = state.subtotal_q
    adjustments: list[dict[str, Any]] = []
    total = subtotal_q
    view = {"items": state.items, "data": state.data, "subtotal_q": subtotal_q, "line_count": state.line_count}
    for modifier in modifiers:
        for adj in modifier(view):
            if isinstance(adj.amount_q, bool) or not isinstance(adj.amount_q, int):
                raise TypeError(f"modifier {modifier!r} returned a non-integer amount")
            adjustments.append(adj.as_dict())
            total += adj.amount_q
    total = max(total, 0)
    if total > MAX_SAFE_Q:
        raise _err(pointer, f"the total would exceed {MAX_SAFE_Q}.", "max_total")
    state.pricing = {"subtotal_q": subtotal_q, "adjustments": adjustments, "total_q": total}
    state.total_q = total
    return state

