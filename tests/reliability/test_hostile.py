"""Hostile input against the live API: generated op lists and bodies, and hand-made
bytes that break parsers. No answer is a 5xx, and a rejected request changes nothing.

The generators send well-formed requests (checked against what a client expects:
rev + 1, totals, replays), requests with one fault, replays of earlier keys and
random bodies; about half are accepted, and the tests assert it. Around every request
they snapshot every table a request could write: after a rejected one nothing may
differ, after an accepted one only what it answers for.

Default run: 500 requests per database (250 modifies, 125 creates, 125 commits);
``OMNIMAN_SOAK=1``: 8000 per database."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import random
import string
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from omniman.models import (
    Directive,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderItem,
    Session,
    SessionLine,
    TicketCounter,
)
from omniman.registry import registry
from omniman.services import abandon_session, create_session, modify_session
from omniman.testing import add_line_op, make_channel

from .conftest import Answer, Http, problem_of, soak

pytestmark = pytest.mark.django_db(transaction=True)

JS_MAX = 2**53 - 1
SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

# -- strategies ---------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
idents = st.from_regex(r"[A-Za-z0-9._:-]{1,70}", fullmatch=True)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 10**12, 10**12 + 1, 10**6, JS_MAX, JS_MAX + 1, 0.5, 1e-9, 1e300]),
)
decimal_strings = st.one_of(
    st.integers(0, 5).flatmap(lambda p: st.decimals(allow_nan=False, allow_infinity=False, places=p)).map(str),
    st.sampled_from(["1", "0.001", "0.0001", "1e3", " 1", "1,5", "", "-0", "1000000", "1000000.001", "NaN"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
OP_NAMES = ["add_line", "remove_line", "set_qty", "replace_sku", "set_price", "set_data", "merge_lines"]


@st.composite
def ops(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)  # not even an object
    op: dict[str, Any] = {"op": draw(st.one_of(st.sampled_from(OP_NAMES), text))}
    fields = {
        "sku": st.one_of(idents, st.sampled_from(["COFFEE", "CAKE"]), json_values),
        "qty": st.one_of(st.integers(-2, 5), decimal_strings, numbers, json_values),
        "unit_price_q": st.one_of(st.integers(0, 5000), numbers, decimal_strings, json_values),
        "line_id": st.one_of(st.sampled_from(["L1", "L2", "L3"]), idents, json_values),
        "meta": st.one_of(st.dictionaries(text, json_values, max_size=3), json_values),
        "path": st.one_of(st.sampled_from(["a", "a.b", "note", "a.b.c.d.e.f", "", "a..b"]), text),
        "value": json_values,
    }
    for name in draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=5)):
        op[name] = draw(fields[name])
    if draw(st.booleans()):
        op[draw(text)] = draw(json_values)
    return op


@st.composite
def modify_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 29)) == 0:
        return draw(json_values)
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        body["channel_code"] = draw(st.one_of(st.just("pos"), st.sampled_from(["web", "nope", ""]), json_values))
    if draw(st.integers(0, 9)):
        body["ops"] = draw(st.one_of(st.lists(ops(), max_size=6), json_values))
    if draw(st.integers(0, 4)) == 0:
        body["rev"] = draw(st.one_of(st.integers(-1, 5), json_values))
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.sampled_from(["idempotency_key", "extra", "state", "total_q"]))] = draw(json_values)
    return body


def other_bodies(channel_field: str = "channel_code") -> st.SearchStrategy[Any]:
    return st.one_of(
        json_values,
        st.dictionaries(
            st.one_of(st.sampled_from([channel_field, "session_key", "handle_type", "handle_ref", "data",
                                       "idempotency_key", "issue_id", "action_id", "to"]), text),
            st.one_of(st.sampled_from(["pos", "web", "SESS-X"]), json_values),
            max_size=6,
        ),
    )


# -- helpers ------------------------------------------------------------------

logger = logging.getLogger(__name__)
# Everything a request could write: a rejected request must leave each table as it was.
TABLES = (Session, SessionLine, IdempotencyKey, Order, OrderItem, OrderEvent, Directive, TicketCounter)


def dump(body: Any) -> bytes:
    """JSON bytes; the stdlib encoder, since bodies carry integers beyond 64 bits."""
    return json.dumps(body, allow_nan=False).encode()


def snapshot(live: Http, key: str, channel: str = "pos") -> tuple[str, bytes]:
    """The session as a client sees it: its ETag and its body."""
    answer = live.get(f"/api/sessions/{key}/?channel_code={channel}")
    assert answer.status == 200, answer.raw
    return answer.etag, answer.raw


def world() -> dict[str, list[Any]]:
    """Every column of every row a request could touch: sessions, lines, idempotency
    keys, orders, order items, order events, directives and ticket counters (raw rows:
    cheap enough to take around every request)."""
    rows: dict[str, list[Any]] = {model.__name__: [] for model in TABLES}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one round trip
            cursor.execute(" UNION ALL ".join(
                f"(SELECT '{model.__name__}', t.id, t::text FROM {connection.ops.quote_name(model._meta.db_table)} "
                "AS t)" for model in TABLES
            ) + " ORDER BY 1, 2")
            for name, _, row in cursor.fetchall():
                rows[name].append(row)
            return rows
        for model in TABLES:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)} ORDER BY id")
            rows[model.__name__] = cursor.fetchall()
    return rows


def changed_tables(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def header_value(value: Any) -> str:
    """What http.client can send: latin-1, no line breaks."""
    text = str(value)[:200].encode("utf-8", "replace").decode("latin-1")
    return text.replace("\r", " ").replace("\n", " ").replace("\0", " ")


def assert_sane(answer: Answer) -> None:
    """Never a 5xx; every error is problem+json."""
    assert answer.status < 500, (answer.status, answer.raw[:500])
    if answer.status >= 400:
        problem_of(answer, answer.status)


def assert_session_invariants(session: dict[str, Any]) -> None:
    lines = session["items"]
    assert session["total_q"] == sum(line["line_total_q"] for line in lines) <= JS_MAX
    for line in lines:
        assert isinstance(line["qty"], str) and line["qty"] == line["qty"].strip()
        assert 0 <= line["unit_price_q"] <= 10**12 and 0 <= line["line_total_q"] <= JS_MAX
        exact = (Decimal(line["qty"]) * line["unit_price_q"]).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        assert line["line_total_q"] == int(exact), line


@dataclass
class Sent:
    """A request the server accepted with an idempotency key, to be replayed."""

    path: str
    raw: bytes
    headers: dict[str, str]
    status: int
    answer: bytes


@dataclass
class Tally:
    """Accepted and rejected requests per kind; the generator must reach both branches."""

    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: str, accepted: bool) -> None:
        self.counts.setdefault(kind, [0, 0])[0 if accepted else 1] += 1

    def check(self, *kinds: str) -> None:
        logger.info("hostile tally (accepted, rejected): %s", self.counts)
        for kind in kinds:
            accepted, rejected = self.counts.get(kind, [0, 0])
            share = accepted / max(accepted + rejected, 1)
            assert accepted + rejected >= 50 and 0.3 <= share <= 0.7, (kind, self.counts)


class Keys:
    """Idempotency keys: fresh ones, and the accepted requests that carried one."""

    def __init__(self, prefix: str) -> None:
        self.counter = itertools.count()
        self.prefix = prefix
        self.accepted: list[Sent] = []
        self.answers: dict[str, bytes] = {}  # any accepted key (the random bodies' too) -> answer

    def fresh(self) -> str:
        return f"{self.prefix}-{next(self.counter)}"

    def place(self, pick: Pick, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        """Maybe give the request a fresh key, in the body or in the header."""
        if not pick.bool():
            return None
        key = self.fresh()
        if pick.bool():
            headers["Idempotency-Key"] = key
        else:
            body["idempotency_key"] = key
        return key

    def remember(self, key: str | None, path: str, raw: bytes, headers: dict[str, str], answer: Answer) -> None:
        if key is not None:
            self.accepted.append(Sent(path, raw, dict(headers), answer.status, answer.raw))
            self.answers[key] = answer.raw


def key_of(body: Any, headers: dict[str, str]) -> str | None:
    key = body.get("idempotency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else headers.get("Idempotency-Key")


def replay(live: Http, keys: Keys, pick: Pick) -> None:
    """Send an accepted keyed request again, byte for byte: the same status and body,
    marked as replayed, and nothing written."""
    sent = pick.one(keys.accepted)
    before = world()
    answer = live.post(sent.path, sent.raw, headers=sent.headers)
    assert (answer.status, answer.raw) == (sent.status, sent.answer), answer.raw[:500]
    assert answer.headers.get("idempotent-replayed") == "true", answer.headers
    assert world() == before


# -- generated modifies ---------------------------------------------------------

DATA_PATHS = ["note", "tags.a", "tags.b", "deep.x.y"]  # "tags", "deep", "deep.x" stay objects
IDENT_CHARS = string.ascii_letters + string.digits + "._:-"


class Pick:
    """The choices that depend on what the server holds (line ids, revs, keys), made
    with a seed hypothesis draws: hypothesis requires the draws of an example not to
    depend on state outside it, and these do."""

    steps = itertools.count()

    def __init__(self, seed: int) -> None:
        # Hypothesis draws small seeds again and again: mixing in the step number keeps
        # the mix of kinds (about half accepted) steady.
        self.rnd = random.Random(seed * 1_000_003 + next(self.steps))

    def one(self, choices: Any) -> Any:
        return self.rnd.choice(list(choices))

    def int(self, low: int, high: int) -> int:
        return self.rnd.randint(low, high)

    def bool(self) -> bool:
        return self.rnd.random() < 0.5

    def text(self, alphabet: str = "abc xyz-", size: int = 8) -> str:
        return "".join(self.rnd.choice(alphabet) for _ in range(self.int(0, size)))

    def sku(self) -> str:
        if self.bool():
            return self.one(["COFFEE", "CAKE", "TEA"])
        return "".join(self.rnd.choice(IDENT_CHARS) for _ in range(self.int(1, 64)))

    def qty(self) -> Any:
        """A valid quantity: a JSON integer or number, or a decimal string (3 places at most)."""
        return self.one([
            self.int(1, 5),
            self.one(["0.5", "1.25", "2.000", "0.001", "3", 0.5, 1.5]),
            str(Decimal(self.int(1, 20_000)) / 1000),
        ])

    def value(self) -> Any:
        return self.one([None, self.bool(), self.int(-1000, 1000), self.text(),
                         {k: self.int(0, 9) for k in self.rnd.sample(["k", "v"], self.int(0, 2))}])


class ModifyRun:
    """One session at a time in the pos channel, driven through the live API; the test
    keeps what a client knows (rev, ETag, line ids) and a model of ``data``."""

    def __init__(self, live: Http) -> None:
        self.live = live
        self.sessions = (f"H-{i}" for i in itertools.count())
        self.explicit_ids = (f"X{i}" for i in itertools.count())
        self.keys = Keys("MOD")
        self.tally = Tally()
        self.new_session()

    def new_session(self) -> None:
        self.key = next(self.sessions)
        create_session(channel="pos", session_key=self.key)
        self.etag, raw = snapshot(self.live, self.key)
        self.state = orjson.loads(raw)
        self.data: dict[str, Any] = copy.deepcopy(self.state["data"])
        self.stale_etags = [self.etag]

    @property
    def path(self) -> str:
        return f"/api/sessions/{self.key}/modify/"

    @property
    def line_ids(self) -> list[str]:
        return [line["line_id"] for line in self.state["items"]]

    # -- bodies ---------------------------------------------------------------

    def valid_ops(self, pick: Pick) -> list[dict[str, Any]]:
        ids = list(self.line_ids)
        ops: list[dict[str, Any]] = []
        for _ in range(pick.int(1, 4)):
            names = ["add_line", "set_data", "merge_lines"]
            if ids:
                names += ["set_qty", "remove_line", "replace_sku", "set_price"] * 2
            name = pick.one(names)
            op: dict[str, Any] = {"op": name}
            if name in ("set_qty", "remove_line", "replace_sku", "set_price"):
                op["line_id"] = pick.one(ids)
            if name == "add_line":
                op.update(sku=pick.sku(), qty=pick.qty(), unit_price_q=pick.int(0, 5000))
                if pick.int(0, 3) == 0:
                    op["meta"] = {"note": pick.one(["no sugar", "hot"])}
                if pick.int(0, 3) == 0:
                    op["line_id"] = next(self.explicit_ids)
                    ids.append(op["line_id"])
            elif name == "set_qty":
                op["qty"] = pick.one([pick.qty(), 0])
                if op["qty"] == 0:
                    ids.remove(op["line_id"])
            elif name == "remove_line":
                ids.remove(op["line_id"])
            elif name == "replace_sku":
                op["sku"] = pick.sku()
                if pick.bool():
                    op["unit_price_q"] = pick.int(0, 5000)
            elif name == "set_price":
                op["unit_price_q"] = pick.int(0, 5000)
            elif name == "set_data":
                op.update(path=pick.one(DATA_PATHS), value=pick.value())
            elif name == "merge_lines":
                ids = []  # which ids survive a merge is the server's business: name none after it
            ops.append(op)
        return ops

    def valid(self, pick: Pick) -> tuple[dict[str, Any], dict[str, str], str | None]:
        body: dict[str, Any] = {"channel_code": "pos", "ops": self.valid_ops(pick)}
        headers: dict[str, str] = {}
        precondition = pick.one(["none", "rev", "if-match", "if-match list", "*"])
        if precondition == "rev":
            body["rev"] = self.state["rev"]
        elif precondition == "if-match":
            headers["If-Match"] = self.etag
        elif precondition == "if-match list":
            headers["If-Match"] = f'"other", {self.etag}'
        elif precondition == "*":
            headers["If-Match"] = "*"
        return body, headers, self.keys.place(pick, body, headers)

    def broken(self, pick: Pick) -> tuple[dict[str, Any], dict[str, str], str]:
        """A valid body with one fault; the fault names what makes it rejected."""
        body, headers, _ = self.valid(pick)
        ops = body["ops"]
        at = pick.int(0, len(ops) - 1)
        faults = ["stale rev", "stale if-match", "unknown line", "bad qty", "bad price", "bad sku", "unknown op",
                  "unknown op field", "unknown field", "empty ops", "other channel", "no channel", "bad key",
                  "keys differ", "total over 2^53", "bad path", "bad rev"]
        if self.keys.accepted:
            faults.append("reused key")
        if self.line_ids:
            faults.append("duplicate line id")
        fault = pick.one(faults)
        if fault == "stale rev":
            body.pop("rev", None)
            headers.pop("If-Match", None)
            rev = self.state["rev"]
            body["rev"] = pick.one([rev + 1, rev + 7] + ([rev - 1, 0] if rev else []))
        elif fault == "stale if-match":
            body.pop("rev", None)
            headers["If-Match"] = pick.one(['"nope"', *self.stale_etags[-3:-1]])
        elif fault == "unknown line":
            name = pick.one(["set_qty", "remove_line", "set_price", "replace_sku"])
            ops[at] = {"op": name, "line_id": "NOPE", **{
                "set_qty": {"qty": 1}, "remove_line": {}, "set_price": {"unit_price_q": 1}, "replace_sku": {"sku": "TEA"},
            }[name]}
        elif fault == "bad qty":
            ops[at] = {"op": "add_line", "sku": "COFFEE", "unit_price_q": 5,
                       "qty": pick.one([0, -1, "-1", "1.0001", 1000001, "abc", True, None, [], "NaN", ""])}
        elif fault == "bad price":
            ops[at] = {"op": "add_line", "sku": "COFFEE", "qty": 1,
                       "unit_price_q": pick.one([-1, 10**12 + 1, 500.0, "500", None, True, 2**64])}
        elif fault == "bad sku":
            ops[at] = {"op": "add_line", "qty": 1, "unit_price_q": 5,
                       "sku": pick.one([123, "", "a b", "x" * 65, "café", None])}
        elif fault == "unknown op":
            ops[at] = {"op": pick.one(["drop_table", "", "ADD_LINE", 7])}
        elif fault == "unknown op field":
            ops[at] = {**ops[at], "colour": "red"}
        elif fault == "unknown field":
            body[pick.one(["state", "total_q", "extra", "items"])] = 1
        elif fault == "empty ops":
            body["ops"] = []
        elif fault == "other channel":
            body["channel_code"] = pick.one(["web", "nope", ""])
        elif fault == "no channel":
            del body["channel_code"]
        elif fault == "bad key":
            headers.pop("Idempotency-Key", None)
            body["idempotency_key"] = pick.one(["", "k" * 256, "\x01", "clé", 42])
        elif fault == "keys differ":
            headers["Idempotency-Key"] = self.keys.fresh()
            body["idempotency_key"] = self.keys.fresh()
        elif fault == "total over 2^53":
            ops[at] = {"op": "add_line", "sku": "BIG", "qty": 1000000, "unit_price_q": 10**12}
        elif fault == "bad path":
            ops[at] = {"op": "set_data", "value": 1,
                       "path": pick.one(["", "a..b", "a.b.c.d.e.f", "a b", "é"])}
        elif fault == "bad rev":
            headers.pop("If-Match", None)
            body["rev"] = pick.one(["1", 1.5, True, [1], -1])
        elif fault == "reused key":
            sent = pick.one(self.keys.accepted)
            headers.pop("Idempotency-Key", None)
            body["idempotency_key"] = key_of(orjson.loads(sent.raw), sent.headers)
            if sent.path == self.path:
                body["ops"] = [*ops, {"op": "set_data", "path": "note", "value": "another body"}]
        elif fault == "duplicate line id":
            ops[0] = {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 5,  # first: no op removed it yet
                      "line_id": pick.one(self.line_ids)}
        return body, headers, fault

    # -- steps ----------------------------------------------------------------

    def step(self, pick: Pick, random_body: Any, as_header: bool) -> None:
        kind = pick.one(["valid"] * 8 + ["replay"] * 2 + ["broken"] * 7 + ["random"] * 3)
        if kind == "replay" and not self.keys.accepted:
            kind = "valid"
        if kind == "replay":
            replay(self.live, self.keys, pick)
            self.tally.add("modify", accepted=True)
            return
        fault = None
        if kind == "valid":
            body, headers, key = self.valid(pick)
        elif kind == "broken":
            body, headers, fault = self.broken(pick)
        else:
            body, headers = copy.deepcopy(random_body), {}
            if as_header and isinstance(body, dict) and "rev" in body:
                headers["If-Match"] = header_value(body.pop("rev"))
        key = key_of(body, headers)
        before = world()
        raw = dump(body)
        answer = self.live.post(self.path, raw, headers=headers)
        assert_sane(answer)
        note(f"{kind} {fault or ''}: {raw[:300]!r} {headers} -> {answer.status} {answer.raw[:300]!r}")
        if kind == "valid":
            assert answer.status == 200, answer.raw[:500]
        if kind == "broken":
            assert 400 <= answer.status < 500, (fault, answer.status, answer.raw[:500])
        replayed = answer.headers.get("idempotent-replayed") == "true"
        self.tally.add("modify", accepted=answer.status == 200)
        if answer.status == 200 and replayed:  # a random body that carried an earlier key
            assert world() == before and key in self.keys.answers and answer.raw == self.keys.answers[key]
        elif answer.status == 200:
            self.accepted(body, headers, raw, answer, before, modelled=kind == "valid")
        else:
            assert world() == before, (answer.status, answer.raw[:300], changed_tables(before, world()))

    def accepted(
        self, body: Any, headers: dict[str, str], raw: bytes, answer: Answer, before: Any, *, modelled: bool
    ) -> None:
        """The invariants of an accepted modify; ``modelled``: the test built the ops, so
        it knows which lines go and come, and what ``data`` becomes."""
        session = answer.json()
        ops = body["ops"]
        assert session["rev"] == self.state["rev"] + 1, (self.state["rev"], session["rev"])
        assert session["session_key"] == self.key and session["state"] == "open"
        assert_session_invariants(session)
        ids = {line["line_id"] for line in session["items"]}
        if modelled and not any(op["op"] == "merge_lines" for op in ops):
            known, gone, count = set(self.line_ids), set(), len(self.line_ids)
            for op in ops:
                if op["op"] == "add_line":
                    known.add(op.get("line_id", ""))
                    gone.discard(op.get("line_id", ""))
                    count += 1
                elif op["op"] == "remove_line" or (op["op"] == "set_qty" and op["qty"] == 0):
                    known.discard(op["line_id"])
                    gone.add(op["line_id"])
                    count -= 1
            assert known - {""} <= ids and not gone & ids and len(ids) == count, (ops, self.line_ids, ids)
        if modelled:
            apply_set_data(self.data, ops)
            assert session["data"] == self.data, (session["data"], self.data)
        self.data = copy.deepcopy(session["data"])
        # What the client reads back is what it was answered, under a new tag.
        assert answer.etag and answer.etag not in self.stale_etags
        etag, current = snapshot(self.live, self.key)
        assert etag == answer.etag and orjson.loads(current) == session
        # Only the session, its lines and (with a key) one new key are written.
        after = world()
        assert changed_tables(before, after) <= {"Session", "SessionLine", "IdempotencyKey"}
        key = key_of(body, headers)
        assert len(after["IdempotencyKey"]) == len(before["IdempotencyKey"]) + (key is not None)
        self.keys.remember(key, self.path, raw, headers, answer)
        self.state, self.etag = session, answer.etag
        self.stale_etags.append(answer.etag)
        if len(session["items"]) > 40:  # start a fresh session now and then
            self.new_session()


def apply_set_data(data: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """What the ``set_data`` ops of a list do to ``data``, as SPEC says (null deletes)."""
    for op in ops:
        if op["op"] != "set_data":
            continue
        *parents, last = op["path"].split(".")
        node = data
        for part in parents:
            if node.get(part) is None:
                if op["value"] is None:
                    break
                node[part] = {}
            node = node[part]
        else:
            if op["value"] is None:
                node.pop(last, None)
            else:
                node[last] = op["value"]


def test_generated_modifies_are_half_accepted_and_rejected_ones_change_nothing(live: Http) -> None:
    run = ModifyRun(live)

    @settings(max_examples=soak(250, 4000), **SETTINGS)
    @given(seed=st.integers(0, 2**64 - 1), random_body=modify_bodies(), as_header=st.booleans())
    def check(seed: int, random_body: Any, as_header: bool) -> None:
        run.step(Pick(seed), random_body, as_header)

    check()
    run.tally.check("modify")


# -- generated creates and commits ------------------------------------------------

CREATE = "/api/sessions/"
POST_COMMIT = ["hostile.order_committed"]


class CommitRun:
    """Creates and commits in the pos channel (which queues a post-commit directive):
    valid ones, ones with a single fault, replays and random bodies."""

    def __init__(self, live: Http) -> None:
        self.live = live
        self.counter = itertools.count()
        self.create_keys = Keys("NEW")
        self.commit_keys = Keys("COMMIT")
        self.tally = Tally()
        self.empty = self.prepare(lines=0)
        self.abandoned = self.prepare(lines=1)
        abandon_session(channel="pos", session_key=self.abandoned)
        self.open = self.prepare()
        self.committed: list[str] = []

    def prepare(self, lines: int = 2) -> str:
        key = f"C-{next(self.counter)}"
        create_session(channel="pos", session_key=key)
        if lines:
            modify_session(channel="pos", session_key=key, ops=[
                add_line_op(sku=f"S{i}", qty=f"{i + 1}.5", unit_price_q=333 * (i + 1)) for i in range(lines)
            ])
        return key

    def send(self, path: str, body: Any, headers: dict[str, str]) -> tuple[bytes, Answer, Any]:
        before = world()
        raw = dump(body)
        answer = self.live.post(path, raw, headers=headers)
        assert_sane(answer)
        note(f"{path} {raw[:300]!r} {headers} -> {answer.status} {answer.raw[:300]!r}")
        return raw, answer, before

    def rejected(self, answer: Answer, before: Any, status: int | None = None, code: str | None = None) -> None:
        if status is not None:
            problem_of(answer, status, code)
        assert answer.status >= 400, answer.raw[:500]
        assert world() == before, (answer.status, answer.raw[:300], changed_tables(before, world()))

    # -- creates ----------------------------------------------------------------

    def create(self, pick: Pick, random_body: Any) -> None:
        kind = pick.one(["valid"] * 8 + ["replay"] * 2 + ["broken"] * 7 + ["random"] * 3)
        if kind == "replay" and not self.create_keys.accepted:
            kind = "valid"
        if kind == "replay":
            replay(self.live, self.create_keys, pick)
            self.tally.add("create", accepted=True)
            return
        body: Any
        headers: dict[str, str] = {}
        if kind == "random":
            body = copy.deepcopy(random_body)
        else:
            body = {"channel_code": "pos"}
            if pick.bool():
                body["session_key"] = f"N-{next(self.counter)}"
            if pick.bool():
                body.update(handle_type="table", handle_ref=str(pick.int(1, 99)))
            if pick.bool():
                body["data"] = {"note": pick.text()}
            self.create_keys.place(pick, body, headers)
        fault = None
        if kind == "broken":
            faults = ["existing key", "bad key", "other channel", "no channel", "unknown field", "bad data",
                      "bad idempotency key", "handle without type"]
            if self.create_keys.accepted:
                faults.append("reused key")
            fault = pick.one(faults)
            if fault == "existing key":
                body["session_key"] = pick.one([self.empty, self.open, self.abandoned])
            elif fault == "bad key":
                body["session_key"] = pick.one(["", "a b", "k" * 65, 12, None])
            elif fault == "other channel":
                body["channel_code"] = pick.one(["nope", "", "POS"])
            elif fault == "no channel":
                del body["channel_code"]
            elif fault == "unknown field":
                body[pick.one(["state", "rev", "items", "x"])] = 1
            elif fault == "bad data":
                body["data"] = pick.one([[], "x", 1, True])
            elif fault == "bad idempotency key":
                headers.pop("Idempotency-Key", None)
                body["idempotency_key"] = pick.one(["", "\x7f", "k" * 256, 7])
            elif fault == "handle without type":
                body.pop("handle_type", None)
                body["handle_ref"] = "x" * 300
            elif fault == "reused key":
                sent = pick.one(self.create_keys.accepted)
                headers.pop("Idempotency-Key", None)
                body["idempotency_key"] = key_of(orjson.loads(sent.raw), sent.headers)
                body["data"] = {"another": "body"}
        key = key_of(body, headers)
        raw, answer, before = self.send(CREATE, body, headers)
        if kind == "valid":
            assert answer.status == 201, answer.raw[:500]
        if kind == "broken":
            assert 400 <= answer.status < 500, (fault, answer.status, answer.raw[:500])
        self.tally.add("create", accepted=answer.status == 201)
        if answer.status != 201:
            self.rejected(answer, before)
            return
        if answer.headers.get("idempotent-replayed") == "true":  # a random body that carried an earlier key
            assert world() == before and key in self.create_keys.answers, answer.raw
            assert answer.raw == self.create_keys.answers[key]
            return
        session = answer.json()
        after = world()
        assert changed_tables(before, after) <= {"Session", "IdempotencyKey"}
        assert len(after["Session"]) == len(before["Session"]) + 1
        assert len(after["IdempotencyKey"]) == len(before["IdempotencyKey"]) + (key is not None)
        assert session["state"] == "open" and session["rev"] == 0 and session["items"] == []
        if isinstance(body, dict) and "session_key" in body:
            assert session["session_key"] == body["session_key"]
        assert answer.headers["location"].endswith(f"/api/sessions/{session['session_key']}/?channel_code=pos")
        assert snapshot(self.live, session["session_key"])[0] == answer.etag
        if isinstance(key, str):
            self.create_keys.remember(key, CREATE, raw, headers, answer)

    # -- commits ----------------------------------------------------------------

    def commit(self, pick: Pick, random_body: Any, random_header: str | None) -> None:
        kind = pick.one(["valid"] * 8 + ["replay"] * 2 + ["broken"] * 7 + ["random"] * 3)
        if kind == "replay" and not self.commit_keys.accepted:
            kind = "valid"
        if kind == "replay":
            replay(self.live, self.commit_keys, pick)
            self.tally.add("commit", accepted=True)
            return
        target = self.open
        body: Any
        headers: dict[str, str] = {}
        if kind == "random":
            body = copy.deepcopy(random_body)
            if random_header is not None:
                headers["Idempotency-Key"] = header_value(random_header)
        else:
            body = {"channel_code": "pos"}
            self.commit_keys.place(pick, body, headers)
            if pick.bool():
                headers["If-Match"] = pick.one([snapshot(self.live, target)[0], "*"])
        fault = None
        if kind == "broken":
            faults = ["empty", "abandoned", "unknown session", "other channel", "no channel", "stale if-match",
                      "bad key", "keys differ", "unknown field"]
            if self.committed:
                faults.append("committed")
            if self.commit_keys.accepted:
                faults.append("reused key")
            fault = pick.one(faults)
            if fault in ("empty", "abandoned"):
                target = self.empty if fault == "empty" else self.abandoned
                headers.pop("If-Match", None)
            elif fault == "committed":
                target = pick.one(self.committed)
                headers.pop("Idempotency-Key", None)
                body.pop("idempotency_key", None)
                if pick.bool():
                    body["idempotency_key"] = self.commit_keys.fresh()
            elif fault == "unknown session":
                target = "NOPE"
            elif fault == "other channel":
                body["channel_code"] = pick.one(["web", "nope", ""])
            elif fault == "no channel":
                del body["channel_code"]
            elif fault == "stale if-match":
                headers["If-Match"] = pick.one(['"nope"', '"0"', "W/\"1\""])
            elif fault == "bad key":
                headers.pop("Idempotency-Key", None)
                body["idempotency_key"] = pick.one(["", "k" * 256, "\x01", 42])
            elif fault == "keys differ":
                headers["Idempotency-Key"] = self.commit_keys.fresh()
                body["idempotency_key"] = self.commit_keys.fresh()
            elif fault == "unknown field":
                body[pick.one(["total_q", "order_ref", "x"])] = 1
            elif fault == "reused key":  # the key of a commit of another session
                sent = pick.one(self.commit_keys.accepted)
                headers.pop("Idempotency-Key", None)
                body["idempotency_key"] = key_of(orjson.loads(sent.raw), sent.headers)
        key = key_of(body, headers)
        path = f"/api/sessions/{target}/commit/"
        raw, answer, before = self.send(path, body, headers)
        if kind == "valid":
            assert answer.status == 201, answer.raw[:500]
        if kind == "broken":
            assert 400 <= answer.status < 500, (fault, answer.status, answer.raw[:500])
            if fault == "committed":
                problem = problem_of(answer, 409, "already_committed")
                assert problem["order_ref"] == Session.objects.get(session_key=target).order_ref
            if fault == "empty":
                assert problem_of(answer, 409, "commit_blocked")["reasons"]
        self.tally.add("commit", accepted=answer.status == 201)
        if answer.status != 201:
            self.rejected(answer, before)
            return
        if answer.headers.get("idempotent-replayed") == "true":  # pragma: no cover - a random key that was used
            assert world() == before and answer.raw == self.commit_keys.answers[key]
            return
        self.sealed(target, answer, before, key)
        if isinstance(key, str):
            self.commit_keys.remember(key, path, raw, headers, answer)
        self.committed.append(target)
        self.open = self.prepare(lines=pick.int(1, 3))

    def sealed(self, target: str, answer: Answer, before: Any, key: str | None) -> None:
        """One order per committed session, equal to the session it seals."""
        body = answer.json()
        session = Session.objects.get(channel__code="pos", session_key=target)
        order = Order.objects.get(session=session)
        fields = ("line_id", "sku", "qty", "unit_price_q", "line_total_q", "meta")
        lines = [(*line[:2], Decimal(line[2]), *line[3:]) for line in session.lines.order_by("position").values_list(*fields)]
        items = list(order.items.order_by("position").values_list(*fields))
        assert session.state == "committed" and session.order_ref == order.ref == body["order_ref"]
        assert items == lines and body["items_count"] == len(lines)
        assert order.total_q == session.total_q == body["total_q"] == sum(line[4] for line in lines)
        assert body["session_key"] == target and body["channel_code"] == "pos" and body["status"] == "new"
        assert [e.type for e in order.events.all()] == ["order.committed"]
        assert sorted(order.ref for order in Order.objects.all()) == sorted(
            Session.objects.filter(state="committed").values_list("order_ref", flat=True))
        assert Directive.objects.filter(payload__order_ref=order.ref).count() == len(POST_COMMIT)
        after = world()
        assert len(after["Order"]) == len(before["Order"]) + 1
        assert len(after["Directive"]) == len(before["Directive"]) + len(POST_COMMIT)
        assert len(after["IdempotencyKey"]) == len(before["IdempotencyKey"]) + (key is not None)
        assert len(set(after["Session"]) - set(before["Session"])) == 1  # the committed session, no other


def test_generated_creates_and_commits_are_half_accepted_and_rejected_ones_change_nothing(live: Http) -> None:
    make_channel("pos", post_commit_directives=POST_COMMIT)
    handled: list[str] = []
    registry.register_handler(POST_COMMIT[0], lambda directive, ctx: handled.append(directive.payload["order_ref"]))
    try:
        run = CommitRun(live)

        @settings(max_examples=soak(125, 2000), **SETTINGS)
        @given(seed=st.integers(0, 2**64 - 1), create=other_bodies(), commit=other_bodies(),
               header=st.one_of(st.none(), text))
        def check(seed: int, create: Any, commit: Any, header: str | None) -> None:
            pick = Pick(seed)
            run.create(pick, create)
            run.commit(pick, commit, header)

        check()
    finally:
        registry.handlers.pop(POST_COMMIT[0], None)
        registry.handler_options.pop(POST_COMMIT[0], None)
    run.tally.check("create", "commit")
    # The handler ran once per order, for committed sessions only.
    assert sorted(handled) == sorted(Order.objects.values_list("ref", flat=True))
    assert set(Directive.objects.values_list("status", flat=True)) == {"done"}


# -- hand-made bytes ------------------------------------------------------------

MODIFY = "/api/sessions/RAW/modify/"


@pytest.fixture
def raw_session(live: Http) -> tuple[str, bytes]:
    create_session(channel="pos", session_key="RAW")
    modify_session(channel="pos", session_key="RAW", ops=[add_line_op()])
    return snapshot(live, "RAW")


def _op(value: bytes) -> bytes:
    return b'{"channel_code": "pos", "ops": [' + value + b"]}"


MALFORMED = {
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "non-UTF-8 bytes": _op(b'{"op": "add_line", "sku": "CAF\xc9", "qty": 1, "unit_price_q": 5}'),
    "latin-1 body": '{"channel_code": "pos", "ops": [], "x": "café"}'.encode("latin-1"),
    "UTF-16 body": '{"channel_code": "pos"}'.encode("utf-16"),
    "duplicate keys": b'{"channel_code": "pos", "ops": [], "ops": [{"op": "merge_lines"}]}',
    "duplicate keys in an op": _op(b'{"op": "add_line", "sku": "A", "sku": "B", "qty": 1, "unit_price_q": 5}'),
    "NaN": _op(b'{"op": "add_line", "sku": "A", "qty": NaN, "unit_price_q": 5}'),
    "Infinity": _op(b'{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": Infinity}'),
    "-Infinity": _op(b'{"op": "set_data", "path": "a", "value": -Infinity}'),
    "lone surrogate": _op(b'{"op": "set_data", "path": "a", "value": "\\udc00"}'),
    "NUL in a string": _op(b'{"op": "set_data", "path": "a", "value": "a\\u0000b"}'),
    "truncated": b'{"channel_code": "pos", "ops": [',
    "empty body": b"",
    "trailing garbage": b'{"channel_code": "pos", "ops": []} {}',
    "BOM": b"\xef\xbb\xbf{}",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bytes_are_400_and_change_nothing(live: Http, raw_session: tuple[str, bytes], raw: bytes) -> None:
    answer = live.post(MODIFY, raw)
    assert answer.status == 400, answer.raw[:300]
    assert problem_of(answer, 400)["code"] in ("malformed_request", "validation_error")
    assert snapshot(live, "RAW") == raw_session


VALID_BUT_WRONG = {
    "a 500 000 character sku": _op(b'{"op": "add_line", "sku": "' + b"S" * 500_000 + b'", "qty": 1, "unit_price_q": 5}'),
    "a 900 000 character data value": _op(b'{"op": "set_data", "path": "a", "value": "' + b"v" * 900_000 + b'"}'),
    "an over-long session key": b'{"channel_code": "pos", "session_key": "' + b"k" * 100_000 + b'"}',
    "10 001 ops": b'{"channel_code": "pos", "ops": [' + b",".join([b'{"op": "merge_lines"}'] * 10_001) + b"]}",
    "a huge integer": _op(b'{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": ' + b"9" * 5_000 + b"}"),
    "a huge exponent": _op(b'{"op": "add_line", "sku": "A", "qty": 1e999999, "unit_price_q": 5}'),
    "a total over 2^53": _op(b'{"op": "add_line", "sku": "A", "qty": 1000000, "unit_price_q": 1000000000000}'),
}


@pytest.mark.parametrize("raw", VALID_BUT_WRONG.values(), ids=VALID_BUT_WRONG.keys())
def test_out_of_range_bodies_are_4xx_and_change_nothing(live: Http, raw_session: tuple[str, bytes], raw: bytes) -> None:
    answer = live.post(MODIFY, raw)
    assert 400 <= answer.status < 500, answer.raw[:300]
    problem_of(answer, answer.status)
    assert snapshot(live, "RAW") == raw_session
    assert Session.objects.count() == 1


def test_huge_bodies_are_413_and_the_client_reads_the_answer(live: Http, raw_session: tuple[str, bytes]) -> None:
    for size in (1024 * 1024 + 1, 8 * 1024 * 1024):
        raw = _op(b'{"op": "set_data", "path": "a", "value": "' + b"x" * size + b'"}')
        answer = live.post(MODIFY, raw)  # a reset connection would raise here
        problem_of(answer, 413, "payload_too_large")
    assert snapshot(live, "RAW") == raw_session


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/jsonx", "text/json",
])
def test_wrong_content_types_are_415_and_change_nothing(
    live: Http, raw_session: tuple[str, bytes], content_type: str
) -> None:
    body = orjson.dumps({"channel_code": "pos", "ops": [add_line_op()]})
    problem_of(live.post(MODIFY, body, headers={"Content-Type": content_type}), 415, "unsupported_media_type")
    assert snapshot(live, "RAW") == raw_session


@pytest.mark.parametrize("headers", [
    {"X-Big": "a" * 70_000},
    {**{f"X-H{i}": "v" for i in range(150)}},
    {"If-Match": '"' + "e" * 60_000 + '"'},
    {"If-Match": "W/" * 1_000},
    {"Idempotency-Key": "k" * 10_000},
    {"Idempotency-Key": "\x01\x02"},
    {"Authorization": "Token " + "t" * 50_000},
], ids=["one 70 KB header", "150 headers", "a 60 KB If-Match", "a broken If-Match", "a 10 KB key",
        "a key with control characters", "a 50 KB token"])
def test_oversized_or_odd_headers_never_fail_and_change_nothing(
    live: Http, raw_session: tuple[str, bytes], headers: dict[str, str]
) -> None:
    body = {"channel_code": "pos", "ops": [add_line_op()]}
    answer = live.post(MODIFY, body, headers=headers)
    assert 400 <= answer.status < 500, (answer.status, answer.raw[:300])
    assert snapshot(live, "RAW") == raw_session


@pytest.mark.parametrize("path", [
    "/api/sessions/RAW/?channel_code=%FF%FE",
    "/api/sessions/RAW/?channel_code=pos&channel_code=web",
    "/api/sessions/%C3%A9/?channel_code=pos",
    "/api/sessions/RAW%00/?channel_code=pos",
    "/api/sessions/?cursor=" + "A" * 5_000,
    "/api/sessions/?page_size=99999999999999999999999",
    "/api/orders/?created_after=9999-99-99",
    "/api/orders/stream/?after=%FF&timeout=-1",
    "/api/orders/stream/?timeout=NaN",
    "/api/orders/stream/?timeout=1e309",
    "/api/" + "x/" * 2_000,
])
def test_odd_queries_and_paths_never_fail(live: Http, raw_session: tuple[str, bytes], path: str) -> None:
    assert_sane(live.get(path))
