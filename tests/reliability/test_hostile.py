"""Hostile input against the live API: generated op lists and bodies, and hand-made
bytes that break parsers. No answer is a 5xx, and a rejected request changes nothing.

Default run: 375 generated cases per database (SQLite and PostgreSQL runs: 750);
``OMNIMAN_SOAK=1``: 6000 per database."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniman.models import IdempotencyKey, Order, Session
from omniman.services import create_session, modify_session
from omniman.testing import add_line_op

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


def dump(body: Any) -> bytes:
    """JSON bytes; the stdlib encoder, since bodies carry integers beyond 64 bits."""
    return json.dumps(body, allow_nan=False).encode()


def snapshot(live: Http, key: str, channel: str = "pos") -> tuple[str, bytes]:
    """The session as a client sees it: its ETag and its body."""
    answer = live.get(f"/api/sessions/{key}/?channel_code={channel}")
    assert answer.status == 200, answer.raw
    return answer.etag, answer.raw


def row(key: str) -> dict[str, Any]:
    """Every column of the session's row and of its lines (cheaper than a GET, and stricter)."""
    session = Session.objects.get(channel__code="pos", session_key=key)
    return {"row": Session.objects.filter(pk=session.pk).values().get(), "items": session.items}


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


# -- generated cases ----------------------------------------------------------


def test_generated_modifies_never_fail_and_rejected_ones_change_nothing(live: Http) -> None:
    keys = (f"H-{i}" for i in itertools.count())
    state = {"key": next(keys)}
    create_session(channel="pos", session_key=state["key"])
    seen = {"cases": 0, "accepted": 0}

    @settings(max_examples=soak(250, 4000), **SETTINGS)
    @given(body=modify_bodies(), as_header=st.booleans())
    def check(body: Any, as_header: bool) -> None:
        key = state["key"]
        before = row(key)
        headers = {}
        if as_header and isinstance(body, dict) and "rev" in body:
            headers["If-Match"] = header_value(body.pop("rev"))
        answer = live.post(f"/api/sessions/{key}/modify/", dump(body), headers=headers)
        seen["cases"] += 1
        assert_sane(answer)
        if answer.status == 200:
            seen["accepted"] += 1
            assert_session_invariants(answer.json())
            if len(answer.json()["items"]) > 40:  # start a fresh session now and then
                state["key"] = next(keys)
                create_session(channel="pos", session_key=state["key"])
        else:
            assert row(key) == before, answer.raw

    check()
    assert seen["cases"] >= 100


def test_generated_creates_and_commits_never_fail_and_rejected_ones_change_nothing(live: Http) -> None:
    counter = itertools.count()

    def fresh() -> str:
        key = f"C-{next(counter)}"
        create_session(channel="pos", session_key=key)
        modify_session(channel="pos", session_key=key, ops=[add_line_op()])
        return key

    state = {"key": fresh()}

    @settings(max_examples=soak(125, 2000), **SETTINGS)
    @given(create=other_bodies(), commit=other_bodies(), header=st.one_of(st.none(), text))
    def check(create: Any, commit: Any, header: str | None) -> None:
        sessions = Session.objects.count()
        keys = IdempotencyKey.objects.count()
        answer = live.post("/api/sessions/", dump(create))
        assert_sane(answer)
        assert Session.objects.count() == sessions + (answer.status == 201)
        if answer.status != 201:
            assert IdempotencyKey.objects.count() == keys

        key = state["key"]
        before = row(key)
        orders = Order.objects.count()
        headers = {} if header is None else {"Idempotency-Key": header_value(header)}
        answer = live.post(f"/api/sessions/{key}/commit/", dump(commit), headers=headers)
        assert_sane(answer)
        if answer.status == 201:
            assert Order.objects.count() == orders + 1
            state["key"] = fresh()
        else:
            assert Order.objects.count() == orders
            assert row(key) == before, answer.raw

    check()


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
