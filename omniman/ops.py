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
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson

from omniman.exceptions import FieldError, OpRejected, ValidationError
from omniman.money import (
    MAX_QTY,
    MAX_SAFE_Q,
    MoneyError,
    format_qty,
    line_total_q,
    parse_amount_q,
    parse_qty,
)
from omniman.validators import IDENT_RE, IDENT_RULE

# A line id of the server's own form (L1, L2, ...): a client that sends one moves
# ``next_line`` past it, so server-made ids never need to skip a taken one.
AUTO_ID_RE = re.compile(r"^L([1-9][0-9]{0,8})\Z")
PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
MAX_PATH_SEGMENTS = 5
MAX_OPTIONS = 20  # options per line
MAX_OPTION_QTY = 1000
ADJUSTMENT_KINDS = ("discount", "tax", "fee")

# op name -> (required fields, optional fields)
OP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "add_line": (frozenset({"sku", "qty"}), frozenset({"unit_price_q", "meta", "line_id", "options"})),
    "remove_line": (frozenset({"line_id"}), frozenset()),
    "set_qty": (frozenset({"line_id", "qty"}), frozenset()),
    "replace_sku": (frozenset({"line_id", "sku"}), frozenset({"unit_price_q"})),
    "set_price": (frozenset({"line_id", "unit_price_q"}), frozenset()),
    "set_data": (frozenset({"path", "value"}), frozenset()),
    "merge_lines": (frozenset(), frozenset()),
    "set_options": (frozenset({"line_id", "options"}), frozenset()),
}
OP_NAMES = tuple(OP_FIELDS)
# The keys of an option as stored and shown.
OPTION_KEYS = ("code", "qty", "unit_price_q")


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
    # Each {"code", "qty", "unit_price_q"}; unit_price_q None when the client sent none.
    options: tuple[dict[str, Any], ...] | None = None
    # A custom op: its spec and its checked fields.
    custom: CustomOp | None = None
    fields: Mapping[str, Any] | None = None

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
    """What a modifier adds: to the order, or to the line ``line_id`` names.

    ``kind`` is ``discount`` (``amount_q`` ≤ 0), ``tax`` or ``fee``; when left out, a
    negative amount is a discount and any other a fee."""

    code: str
    label: str
    amount_q: int
    kind: str | None = None
    line_id: str | None = None

    def resolved_kind(self) -> str:
        if self.kind is not None:
            return self.kind
        return "discount" if self.amount_q < 0 else "fee"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "kind": self.resolved_kind(), "amount_q": self.amount_q}


@dataclass(frozen=True)
class OptionGroup:
    """Options a SKU accepts, as an internal-pricing backend declares them.

    ``options``: option code → ``unit_price_q``. The sum of the quantities of a line's
    options from this group lies between ``min`` and ``max`` (None: no upper bound);
    a group with ``min`` ≥ 1 is required."""

    code: str
    options: Mapping[str, int]
    min: int = 0
    max: int | None = None


@dataclass
class Catalog:
    """What an internal-pricing channel knows of skus: prices, and the option groups
    each accepts (a sku absent from ``groups`` takes no options). ``fetch``, when
    given, is called with skus not looked up yet (those a custom op adds)."""

    prices: dict[str, int] = field(default_factory=dict)
    groups: dict[str, Sequence[OptionGroup]] = field(default_factory=dict)
    fetch: Callable[[set[str]], tuple[Mapping[str, int], Mapping[str, Sequence[OptionGroup]]]] | None = None
    looked_up: set[str] = field(default_factory=set)

    def ensure(self, skus: set[str]) -> None:
        missing = skus - self.looked_up - set(self.prices)
        if missing and self.fetch is not None:
            prices, groups = self.fetch(missing)
            self.prices.update(prices)
            self.groups.update(groups)
        self.looked_up |= missing


@dataclass(frozen=True)
class OpField:
    """One field of a custom op: ``kind`` is ``string`` (1 to ``max_length``
    characters), ``integer`` (``minimum``..``maximum``), ``boolean``, ``object``,
    ``line_id`` or ``sku`` (the ids' pattern), ``qty`` or ``amount_q`` (as in
    ``add_line``). A ``line_id`` field names a line the op reads."""

    kind: str = "string"
    required: bool = True
    max_length: int = 255
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""

    KINDS = ("string", "integer", "boolean", "object", "line_id", "sku", "qty", "amount_q")


class OpView(Mapping[str, Any]):
    """What a custom op's function sees: ``lines`` (line id → line, the lines it
    declared), ``data``, ``subtotal_q``, ``line_count``. Read-only by convention: the
    function returns built-in ops instead of changing anything."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class CustomOp:
    """An op a host adds: ``fn(view, fields)`` returns the built-in ops (raw dicts,
    as a client would send them) that apply it, or raises ``OpRejected``.

    ``lines``: ``"named"`` (the op reads the lines its ``line_id`` fields name) or
    ``"all"`` (every line, as ``merge_lines``); ``new_lines``: how many lines with
    server-made ids it may add, so they are read with the lock."""

    name: str
    fields: Mapping[str, OpField]
    fn: Callable[[OpView, Mapping[str, Any]], Sequence[Mapping[str, Any]]]
    lines: str = "named"
    new_lines: int = 0
    description: str = ""

    def line_fields(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.fields.items() if spec.kind == "line_id")


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
    for op in ops:
        if op.custom is not None and op.fields is not None:
            ids.update(op.fields[name] for name in op.custom.line_fields() if op.fields.get(name) is not None)
            auto += op.custom.new_lines
    if auto:
        for op in ops:
            match = AUTO_ID_RE.match(op.line_id or "") if op.op == "add_line" else None
            if match is not None:
                ids.update(f"L{int(match.group(1)) + n}" for n in range(1, auto + 1))
    return ids, auto


def needs_all_lines(ops: Sequence[Op]) -> bool:
    return any(op.op == "merge_lines" or (op.custom is not None and op.custom.lines == "all") for op in ops)


def escape_pointer(token: str) -> str:
    """One RFC 6901 reference token: ``~`` → ``~0``, ``/`` → ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def _err(pointer: str, detail: str, code: str = "invalid") -> ValidationError:
    return ValidationError(FieldError(pointer, detail, code))


def check_data_size(data: Mapping[str, Any], limit: int, pointer: str, *, by_op: bool = False) -> None:
    """The ``data`` size rule, in one place: ``data`` written as compact JSON is at
    most ``limit`` bytes (``MAX_DATA_BYTES``), else ``max_size`` at ``pointer``; a
    value JSON cannot hold is ``invalid``. ``by_op``: worded for a ``set_data`` op
    (its ``value`` is what made ``data`` too big), else for ``data`` given whole."""
    try:
        size = len(orjson.dumps(data))
    except (TypeError, orjson.JSONEncodeError):
        detail = "value is not valid JSON." if by_op else "data must be valid JSON."
        raise _err(pointer, detail, "invalid") from None
    if size > limit:
        detail = f"data would exceed {limit} bytes." if by_op else f"data must be at most {limit} bytes."
        raise _err(pointer, detail, "max_size")


def _ident(value: Any, pointer: str, name: str) -> str:
    if not isinstance(value, str) or not IDENT_RE.match(value):
        raise _err(pointer, f"{name} must be {IDENT_RULE}")
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


def _options(value: Any, pointer: str) -> tuple[dict[str, Any], ...]:
    """A line's options: a list of ``{"code", "qty"?, "unit_price_q"?}``, codes unique."""
    if not isinstance(value, list):
        raise _err(pointer, "options must be a list of objects.", "invalid_type")
    if len(value) > MAX_OPTIONS:
        raise _err(pointer, f"at most {MAX_OPTIONS} options per line.", "max_length")
    seen: set[str] = set()
    out = []
    for n, item in enumerate(value):
        base = f"{pointer}/{n}"
        if not isinstance(item, dict):
            raise _err(base, "each option must be an object.", "invalid_type")
        for key in item:
            if key not in OPTION_KEYS:
                raise _err(f"{base}/{escape_pointer(str(key))}", "unknown field for an option.", "unknown_field")
        if "code" not in item:
            raise _err(f"{base}/code", "code is required for an option.", "required")
        code = _ident(item["code"], f"{base}/code", "code")
        if code in seen:
            raise _err(f"{base}/code", f"option {code!r} is given twice.", "duplicate")
        seen.add(code)
        qty = item.get("qty", 1)
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise _err(f"{base}/qty", "an option's qty must be a JSON integer.", "invalid_type")
        if not 1 <= qty <= MAX_OPTION_QTY:
            raise _err(f"{base}/qty", f"an option's qty must be 1 to {MAX_OPTION_QTY}.",
                       "min_value" if qty < 1 else "max_value")
        price = _price(item["unit_price_q"], f"{base}/unit_price_q") if "unit_price_q" in item else None
        out.append({"code": code, "qty": qty, "unit_price_q": price})
    return tuple(out)


def _custom_fields(spec: CustomOp, item: Mapping[str, Any], base: str) -> dict[str, Any]:
    """A custom op's fields, each checked against its :class:`OpField`."""
    out: dict[str, Any] = {}
    for name, field_spec in spec.fields.items():
        pointer = f"{base}/{name}"
        if name not in item:
            if field_spec.required:
                raise _err(pointer, f"{name} is required for {spec.name}.", "required")
            out[name] = None
            continue
        value = item[name]
        kind = field_spec.kind
        if kind == "string":
            if not isinstance(value, str):
                raise _err(pointer, f"{name} must be a string.", "invalid_type")
            if not 1 <= len(value) <= field_spec.max_length:
                raise _err(pointer, f"{name} must be 1 to {field_spec.max_length} characters.", "invalid")
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _err(pointer, f"{name} must be a JSON integer.", "invalid_type")
            if field_spec.minimum is not None and value < field_spec.minimum:
                raise _err(pointer, f"{name} must be at least {field_spec.minimum}.", "min_value")
            if field_spec.maximum is not None and value > field_spec.maximum:
                raise _err(pointer, f"{name} must be at most {field_spec.maximum}.", "max_value")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _err(pointer, f"{name} must be true or false.", "invalid_type")
        elif kind == "object":
            if not isinstance(value, dict):
                raise _err(pointer, f"{name} must be an object.", "invalid_type")
        elif kind in ("line_id", "sku"):
            value = _ident(value, pointer, name)
        elif kind == "qty":
            value = _qty(value, pointer)
        elif kind == "amount_q":
            value = _price(value, pointer)
        out[name] = value
    return out


def parse_ops(
    raw: Any, *, limits: Limits | None = None, custom: Mapping[str, CustomOp] | None = None
) -> list[Op]:
    """Check the shape of a raw op list and return typed ops; the first error stops.

    ``custom``: the custom ops a host registered, by name (none by default)."""
    limits = limits or Limits.from_settings()
    custom = custom or {}
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
        if not isinstance(name, str) or (name not in OP_FIELDS and name not in custom):
            raise _err(
                f"{base}/op",
                f"unknown op; one of: {', '.join((*OP_NAMES, *custom))}.",
                "unknown_op" if isinstance(name, str) else "required" if name is None else "invalid_type",
            )
        spec = custom.get(name) if name not in OP_FIELDS else None
        if spec is not None:
            for key in item:
                if key != "op" and key not in spec.fields:
                    raise _err(
                        f"{base}/{escape_pointer(str(key))}", f"unknown field for {name}.", "unknown_field"
                    )
            parsed.append(Op(index=index, op=name, custom=spec, fields=_custom_fields(spec, item, base)))
            continue
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
        if "options" in item:
            kwargs["options"] = _options(item["options"], f"{base}/options")
        if name == "set_data":
            kwargs["path"] = _path(item["path"], f"{base}/path")
            kwargs["value"] = item["value"]
        parsed.append(Op(index=index, op=name, **kwargs))
    return parsed


def skus_to_price(ops: Sequence[Op], lines: Iterable[Mapping[str, Any]] = ()) -> set[str]:
    """The skus an internal-pricing channel must look up: those ops add or swap in,
    and those of the ``lines`` (already read) that ``set_options`` names."""
    skus = {op.sku for op in ops if op.op in ("add_line", "replace_sku") and op.sku}
    named = {op.line_id for op in ops if op.op == "set_options"}
    if named:
        skus |= {line["sku"] for line in lines if line["line_id"] in named}
    return skus


def options_q(options: Sequence[Mapping[str, Any]]) -> int:
    """Σ option ``unit_price_q`` × option ``qty``: what the options add to one unit."""
    return sum(o["unit_price_q"] * o["qty"] for o in options)


def _make_line(
    line_id: str, sku: str, qty: Decimal, price: int, meta: dict[str, Any],
    options: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": sku,
        "qty": format_qty(qty),
        "unit_price_q": price,
        "line_total_q": line_total_q(qty, price, options_q(options)),
        "meta": meta,
        "options": [dict(o) for o in options],
        "adjustments": [],
    }


def _options_of(line: Mapping[str, Any]) -> list[dict[str, Any]]:
    return line.get("options") or []


def option_key(options: Sequence[Mapping[str, Any]]) -> bytes:
    """Options as a line's identity: the same options in any order give the same key."""
    return orjson.dumps(sorted([o["code"], o["qty"], o["unit_price_q"]] for o in options))


_ABSENT: dict[str, Any] = {}  # "no such line before this modify", for the diff


class _Engine:
    def __init__(
        self,
        state: State,
        *,
        pricing_policy: str,
        catalog: Catalog,
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
        self.catalog = catalog
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
        self.catalog.ensure({op.sku})
        price = self.catalog.prices.get(op.sku)
        if price is None:
            raise _err(op.pointer("sku"), f"unknown sku {op.sku!r} in this channel's catalog.", "unknown_sku")
        return price

    def priced_options(
        self, sku: str, options: Sequence[Mapping[str, Any]], pointer: str
    ) -> list[dict[str, Any]]:
        """``options`` with their prices: the client's (external pricing, where each
        needs one) or the catalog's, checked against the groups ``sku`` accepts."""
        if not self.internal:
            for n, option in enumerate(options):
                if option["unit_price_q"] is None:
                    raise _err(f"{pointer}/{n}/unit_price_q",
                               "unit_price_q is required for an option on this channel.", "required")
            return [dict(o) for o in options]
        self.catalog.ensure({sku})
        groups = self.catalog.groups.get(sku, ())
        offered = {code: (group, price) for group in groups for code, price in group.options.items()}
        used: dict[str, int] = {}
        out = []
        for n, option in enumerate(options):
            if option["unit_price_q"] is not None:
                raise _err(f"{pointer}/{n}/unit_price_q",
                           "this channel prices options from its catalog; do not send unit_price_q.", "not_allowed")
            found = offered.get(option["code"])
            if found is None:
                raise _err(f"{pointer}/{n}/code", f"option {option['code']!r} is not offered for sku {sku!r}.",
                           "unknown_option")
            group, price = found
            used[group.code] = used.get(group.code, 0) + option["qty"]
            if group.max is not None and used[group.code] > group.max:
                where = "qty" if option["qty"] > group.max else "code"
                raise _err(f"{pointer}/{n}/{where}",
                           f"group {group.code!r} takes at most {group.max} of its options.", "max_options")
            out.append({"code": option["code"], "qty": option["qty"], "unit_price_q": price})
        for group in groups:
            if used.get(group.code, 0) < group.min:
                raise _err(pointer, f"group {group.code!r} needs at least {group.min}: one of "
                           f"{', '.join(sorted(group.options))}.", "required_option")
        return out

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
        if op.custom is not None:
            self.apply_custom(op)
        else:
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
        options = self.priced_options(op.sku, op.options or (), op.pointer("options"))
        self.put(op, None, _make_line(line_id, op.sku, op.qty, price, op.meta or {}, options))

    def op_remove_line(self, op: Op) -> None:
        self.put(op, self.line(op), None)

    def op_set_qty(self, op: Op) -> None:
        assert op.qty is not None
        old = self.line(op)
        if op.qty == 0:
            self.put(op, old, None)
            return
        self.put(op, old, _make_line(old["line_id"], old["sku"], op.qty, old["unit_price_q"], old["meta"],
                                     _options_of(old)))

    def op_replace_sku(self, op: Op) -> None:
        assert op.sku is not None
        old = self.line(op)
        options = _options_of(old)
        if self.internal:
            price = self.catalog_price(op)
            try:
                options = self.priced_options(op.sku, [{**o, "unit_price_q": None} for o in options], "")
            except ValidationError as exc:
                raise _err(op.pointer("sku"), f"the line's options do not fit sku {op.sku!r}: "
                           f"{exc.errors[0].detail}", exc.errors[0].code) from None
        else:
            price = old["unit_price_q"] if op.unit_price_q is None else op.unit_price_q
        qty = Decimal(old["qty"])
        self.put(op, old, _make_line(old["line_id"], op.sku, qty, price, old["meta"], options))

    def op_set_price(self, op: Op) -> None:
        assert op.unit_price_q is not None
        if self.internal:
            raise _err(op.pointer("op"), "set_price is for external pricing channels only.", "not_allowed")
        old = self.line(op)
        qty = Decimal(old["qty"])
        self.put(op, old, _make_line(old["line_id"], old["sku"], qty, op.unit_price_q, old["meta"], _options_of(old)))

    def op_set_options(self, op: Op) -> None:
        assert op.options is not None
        old = self.line(op)
        options = self.priced_options(old["sku"], op.options, op.pointer("options"))
        qty = Decimal(old["qty"])
        self.put(op, old, _make_line(old["line_id"], old["sku"], qty, old["unit_price_q"], old["meta"], options))

    def apply_custom(self, op: Op) -> None:
        """Run a custom op: its function sees the lines it declared and returns built-in
        ops, applied here as if they stood at its place (errors point at it)."""
        spec = op.custom
        assert spec is not None and op.fields is not None
        if spec.lines == "all":
            if self.loaded is not None:
                raise IncompleteState(op.op)
            lines = dict(self.lines)
        else:
            lines = {}
            for name in spec.line_fields():
                line_id = op.fields.get(name)
                if line_id is None:
                    continue
                self.known(line_id)
                if line_id not in self.lines:
                    raise _err(op.pointer(name), f"no line {line_id!r} in this session.", "unknown_line")
                lines[line_id] = self.lines[line_id]
        view = OpView({"lines": lines, "data": self.data, "subtotal_q": self.subtotal, "line_count": self.count})
        try:
            raw = spec.fn(view, dict(op.fields))
        except OpRejected as exc:
            raise _err(op.pointer(exc.field if exc.field in spec.fields else None), exc.detail, exc.code) from None
        if not isinstance(raw, (list, tuple)):
            raise TypeError(f"custom op {spec.name!r} must return a list of ops, not {type(raw).__name__}")
        if not raw:
            return
        try:
            subs = parse_ops(list(raw), limits=self.limits)
            for sub in subs:
                self.apply(replace(sub, index=op.index))
        except ValidationError as exc:
            raise ValidationError([self._at(op, error) for error in exc.errors]) from None

    @staticmethod
    def _at(op: Op, error: FieldError) -> FieldError:
        """An error of an op a custom op returned, pointed at the custom op: at its field
        of the same name when it has one, else at the op."""
        parts = error.pointer.split("/")
        name = parts[3] if len(parts) > 3 else None
        assert op.custom is not None
        return FieldError(op.pointer(name if name in op.custom.fields else None), error.detail, error.code)

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
        check_data_size(self.data, self.limits.max_data_bytes, op.pointer("value"), by_op=True)

    def op_merge_lines(self, op: Op) -> None:
        """Merge lines with equal sku, unit price and meta into the first of them.

        ``total_q`` never changes. A group whose merged line would not keep the sum
        of its line totals (fractional quantities, each rounded half-even on its own)
        or would exceed the maximum qty is left as it is. Needs every line."""
        if self.loaded is not None:
            raise IncompleteState("merge_lines")
        groups: dict[tuple[str, int, bytes, bytes], list[dict[str, Any]]] = {}
        keys: dict[str, tuple[str, int, bytes, bytes]] = {}
        for line in self.lines.values():
            key = (line["sku"], line["unit_price_q"], orjson.dumps(line["meta"], option=orjson.OPT_SORT_KEYS),
                   option_key(_options_of(line)))
            groups.setdefault(key, []).append(line)
            keys[line["line_id"]] = key
        combined: dict[tuple[str, int, bytes, bytes], dict[str, Any]] = {}
        for key, group in groups.items():
            if len(group) < 2:
                continue
            first = group[0]
            qty = sum((Decimal(part["qty"]) for part in group), Decimal(0))
            if qty > MAX_QTY:
                continue
            line = _make_line(first["line_id"], first["sku"], qty, first["unit_price_q"], first["meta"],
                              _options_of(first))
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
    catalog: Catalog | None = None,
    modifiers: Sequence[Modifier] = (),
    modifiers_read_lines: bool = True,
    tax_inclusive: bool = False,
    limits: Limits | None = None,
) -> State:
    """Apply every op to a copy of ``state``; all apply or a ``ValidationError`` is raised.

    The new state's ``diff`` says which lines to write. When ``state`` is partial, the
    new ``items`` are the loaded lines only, and ``IncompleteState`` is raised when an
    op (or a modifier that reads lines, which sees every line) needs more.
    ``catalog`` (or ``prices``, a catalog of prices only) serves internal pricing."""
    if modifiers and modifiers_read_lines and not state.complete:
        raise IncompleteState("modifiers")
    if catalog is None:
        catalog = Catalog(prices=dict(prices or {}))
    engine = _Engine(state, pricing_policy=pricing_policy, catalog=catalog, limits=limits or Limits.from_settings())
    for op in ops:
        engine.apply(op)
    pointer = f"/ops/{len(ops) - 1}" if ops else "/ops"
    pricing, line_adjustments = compute_pricing(
        list(engine.lines.values()) if modifiers_read_lines else None,
        data=engine.data, subtotal_q=engine.subtotal, line_count=engine.count,
        modifiers=modifiers, tax_inclusive=tax_inclusive, pointer=pointer,
    )
    if modifiers and modifiers_read_lines:
        for line_id, line in list(engine.lines.items()):
            wanted = line_adjustments.get(line_id, [])
            if line.get("adjustments", []) != wanted:
                engine.touch(line_id)
                engine.lines[line_id] = {**line, "adjustments": wanted}
    new = State(
        items=list(engine.lines.values()), data=engine.data, pricing=pricing, total_q=pricing["total_q"],
        next_line=engine.next_line, line_count=engine.count, subtotal_q=engine.subtotal, loaded=state.loaded,
        diff=engine.diff(),
    )
    if new.loaded is not None:
        new.loaded = new.loaded | frozenset(engine.before)
    return new


def compute_pricing(
    items: list[dict[str, Any]] | None,
    *,
    data: Mapping[str, Any],
    subtotal_q: int,
    line_count: int,
    modifiers: Sequence[Modifier] = (),
    tax_inclusive: bool = False,
    pointer: str = "/ops",
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Run the modifiers in order and total up: returns ``pricing`` and each line's
    adjustments by line id.

    Each modifier sees ``items`` (None when the modifiers do not read lines),
    ``data``, ``subtotal_q``, ``line_count``, ``tax_inclusive`` and what the modifiers
    before it added: ``adjustments`` (line ones with their ``line_id``),
    ``discounts_q``, ``taxes_q``, ``fees_q``. ``total_q`` = ``subtotal_q`` +
    discounts + fees + taxes (taxes only when not ``tax_inclusive``: an inclusive tax
    is already in the prices), never below 0."""
    sums = dict.fromkeys(ADJUSTMENT_KINDS, 0)
    order_level: list[dict[str, Any]] = []
    every: list[dict[str, Any]] = []
    by_line: dict[str, list[dict[str, Any]]] = {}
    line_ids = None if items is None else {line["line_id"] for line in items}
    for modifier in modifiers:
        view = {
            "items": items, "data": data, "subtotal_q": subtotal_q, "line_count": line_count,
            "tax_inclusive": tax_inclusive, "adjustments": list(every),
            "discounts_q": sums["discount"], "taxes_q": sums["tax"], "fees_q": sums["fee"],
        }
        for adj in modifier(view):
            if isinstance(adj.amount_q, bool) or not isinstance(adj.amount_q, int):
                raise TypeError(f"modifier {modifier!r} returned a non-integer amount")
            kind = adj.resolved_kind()
            if kind not in ADJUSTMENT_KINDS:
                raise ValueError(f"modifier {modifier!r} returned kind {kind!r}; one of {ADJUSTMENT_KINDS}")
            if kind == "discount" and adj.amount_q > 0:
                raise ValueError(f"modifier {modifier!r} returned a positive discount")
            entry = adj.as_dict()
            if adj.line_id is not None:
                if line_ids is None or adj.line_id not in line_ids:
                    raise ValueError(f"modifier {modifier!r} adjusted line {adj.line_id!r}, which it cannot see")
                by_line.setdefault(adj.line_id, []).append(entry)
                every.append({**entry, "line_id": adj.line_id})
            else:
                order_level.append(entry)
                every.append(entry)
            sums[kind] += adj.amount_q
    total = subtotal_q + sums["discount"] + sums["fee"] + (0 if tax_inclusive else sums["tax"])
    total = max(total, 0)
    if total > MAX_SAFE_Q or any(abs(v) > MAX_SAFE_Q for v in sums.values()):
        raise _err(pointer, f"the total would exceed {MAX_SAFE_Q}.", "max_total")
    pricing = {
        "subtotal_q": subtotal_q,
        "discounts_q": sums["discount"],
        "taxes_q": sums["tax"],
        "fees_q": sums["fee"],
        "total_q": total,
        "adjustments": order_level,
    }
    return pricing, by_line


def empty_pricing() -> dict[str, Any]:
    """The pricing of a session with no lines and no adjustments."""
    return {"subtotal_q": 0, "discounts_q": 0, "taxes_q": 0, "fees_q": 0, "total_q": 0, "adjustments": []}
