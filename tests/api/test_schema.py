"""The OpenAPI document is served without auth, and its rules are the server's: a
request invalid by it is refused, one valid by it is accepted unless a rule of the
channel or the stored state says otherwise (SPEC, ``GET schema/``). The same is
fuzzed from outside by ``tests/example/test_schemathesis.py``."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from omniman_api.schema import document

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def doc(anon: Any) -> dict[str, Any]:
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    return data(response)


def test_schema_is_served_without_auth(doc):
    assert doc["openapi"].startswith("3.1")
    assert "/api/sessions/{session_key}/modify/" in doc["paths"]
    assert "/api/orders/stream/" in doc["paths"]


def _valid(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """``value`` by ``schema``, its content keywords asserted (JSON Schema leaves them
    to the application: a base64url string must decode to JSON valid by ``contentSchema``)."""
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    if not validator.is_valid(value):
        return False
    if "contentSchema" in schema:
        assert (schema["contentEncoding"], schema["contentMediaType"]) == ("base64url", "application/json")
        try:
            content = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except ValueError:
            return False
        return Draft202012Validator(schema["contentSchema"]).is_valid(content)
    return True


def _parameter(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    return next(p["schema"] for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name)


def _as_query_value(schema: dict[str, Any], raw: str) -> Any:
    """A query string value as JSON Schema sees it: a number when it is declared one
    and reads as a JSON number, else the string."""
    if schema.get("type") in ("integer", "number") and JSON_NUMBER.match(raw):
        return json.loads(raw)
    return raw


JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")

QUERY_CASES = [
    ("/api/sessions/", "page_size", ["", "0", "1", "100", "1000", "abc", "-1", "٣", "1.5"]),
    ("/api/sessions/", "channel_code", ["", "pos", "no such", "a" * 65, "nope"]),
    ("/api/sessions/", "state", ["", "open", "closed"]),
    ("/api/sessions/", "handle_type", ["", "table", "x" * 65]),
    ("/api/sessions/", "cursor", ["", "n5", "p5", "q5", "cTA", "n" + "9" * 19]),
    ("/api/orders/", "status", ["", "new", "x" * 65]),
    ("/api/orders/", "number", ["", "1", "42", "0", "01", "-1", "1.5", "one", " 1", "2147483647", "2147483648"]),
    ("/api/orders/stream/", "timeout", ["", "0", "0.01", "-1", "-1e-58", "1e400", "inf", "nan", "1_0", " 1"]),
    ("/api/orders/stream/", "after", ["", "q0", "n0", "q" + "1" * 19, "e30", "eyJwb3MiOjB9", "eyJwb3MiOjEyfQ",
                                      "W10", "eyJwb3MiOi0xfQ", "eyIgIjoxfQ", "e30=", "e3", "!", "a" * 16385,
                                      "eyJwb3MiOjkwMDcxOTkyNTQ3NDA5OTJ9"]),
    ("/api/directives/", "status", ["", "queued", "nope"]),
]


@pytest.mark.parametrize(("path", "name", "values"), QUERY_CASES, ids=[f"{p}?{n}" for p, n, _ in QUERY_CASES])
def test_query_parameters_are_refused_exactly_when_the_schema_says(operator, doc, path, name, values):
    """Empty values included: ``page_size=`` is refused as the schema says, and a
    free-text filter's empty value means no filter, as the schema allows it."""
    schema = _parameter(doc, path, name)
    for raw in values:
        response = operator.get(path, {name: raw})
        valid = _valid(doc, schema, _as_query_value(schema, raw))
        assert (response.status_code == 200) == valid, (name, raw, response.status_code, response.content)
        if not valid:
            assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == f"/{name}"


@pytest.mark.parametrize(("raw", "status"), [
    ("2026-01-01T00:00:00Z", 200),
    ("2026-01-01T00:00:00.123456+05:30", 200),
    ("0064-01-26T05:01:44-17:21", 200),  # an offset PostgreSQL would refuse: sent in UTC
    ("0001-01-01T00:00:00+05:00", 200),  # before year 1 in UTC: the earliest moment
    ("2026-01-01", 400),
    ("2026-01-01T00:00:00", 400),  # no offset: not an RFC 3339 date-time
    ("2026-01-01 00:00:00Z", 400),  # a space for the T
    ("2026-01-01T00:00Z", 400),  # no seconds
    ("2026-13-01T00:00:00Z", 400),
    ("", 400),
    ("yesterday", 400),
])
def test_order_date_filters_take_a_date_time(operator, raw, status):
    for name in ("created_after", "created_before"):
        assert operator.get("/api/orders/", {name: raw}).status_code == status, (name, raw)


def test_every_request_body_refuses_unknown_fields(doc, api):
    schemas = doc["components"]["schemas"]
    bodies = [s for name, s in schemas.items() if name.endswith("InRequest") and name != "OpInRequest"]
    assert len(bodies) == 9  # 7 of the API, 2 of omniman.contrib.payments
    for schema in bodies:
        assert schema["additionalProperties"] is False
    for name in ("OpAddLine", "OpSetData", "OpMergeLines"):
        assert schemas[name]["additionalProperties"] is False
    open_session(api)
    for path, body in [
        ("/api/sessions/SESS-001/abandon/", {"channel_code": "pos", "extra": 1}),
        ("/api/orders/NOPE/transition/", {"to": "ready", "extra": {}}),
        ("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [{"op": "merge_lines", "x": 1}]}),
        ("/api/orders/NOPE/payments/", {"method": "cash", "amount_q": 1, "extra": 1}),
        ("/api/orders/NOPE/refunds/", {"reason": "r", "amount_q": 1, "extra": 1}),
    ]:
        body_problem = problem(api.post_json(path, body), 400, "validation_error")
        assert body_problem["errors"][0]["code"] == "unknown_field"


def test_the_ops_limit_in_the_schema_follows_the_setting(anon, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_OPS_PER_MODIFY": 7}
    doc = data(anon.get("/api/schema/?format=json"))
    assert doc["components"]["schemas"]["ModifyInRequest"]["properties"]["ops"]["maxItems"] == 7


@pytest.mark.parametrize(("body", "pointer"), [
    ({"ops": [{"op": "add_line", "sku": 123, "qty": 1, "unit_price_q": 5}]}, "/ops/0/sku"),
    ({"ops": [{"op": "remove_line", "line_id": 1}]}, "/ops/0/line_id"),
    ({"ops": [{"op": "merge_lines"}], "idempotency_key": 123}, "/idempotency_key"),
])
def test_keys_are_json_strings(api, body, pointer):
    open_session(api)
    response = api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", **body})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == pointer


def test_a_numeric_session_key_is_refused(api):
    response = api.post_json("/api/sessions/", {"channel_code": "pos", "session_key": 123})
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/session_key"


def test_items_count_counts_lines_not_quantities(api):
    open_session(api)
    add_coffee(api)
    ops = [{"op": "add_line", "sku": "TEA", "qty": 3, "unit_price_q": 300}]
    assert api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": ops}).status_code == 200
    body = data(api.post_json("/api/sessions/SESS-001/commit/", {"channel_code": "pos"}))
    assert body["items_count"] == 2


def test_an_unknown_path_with_a_newline_is_a_problem_404(api):
    response = api.post_json("/api/sessions/%0A%C2%AC/resolve/", {})
    problem(response, 404, "not_found")


def test_cursors_are_what_the_schema_says(api, doc):
    for key in ("A", "B", "C"):
        open_session(api, key=key)
    page = data(api.get("/api/sessions/?page_size=1"))
    cursor = page["next"].split("cursor=")[1].split("&")[0]
    assert _valid(doc, _parameter(doc, "/api/sessions/", "cursor"), cursor)
    stream = data(api.get("/api/orders/stream/"))
    assert _valid(doc, _parameter(doc, "/api/orders/stream/", "after"), stream["cursor"])


def test_the_document_declares_the_answer_headers_of_each_operation():
    """ETag, Location and Idempotent-Replayed on the success answers that carry
    them, and only there."""
    paths = document()["paths"]

    def headers(path: str, method: str, status: str) -> list[str]:
        return sorted(paths[path][method]["responses"][status].get("headers", {}))

    assert headers("/sessions/", "post", "201") == ["ETag", "Idempotent-Replayed", "Location"]
    assert headers("/sessions/{session_key}/", "get", "200") == ["ETag"]
    assert headers("/sessions/{session_key}/", "get", "304") == ["ETag"]
    assert headers("/sessions/{session_key}/modify/", "post", "200") == ["ETag", "Idempotent-Replayed"]
    assert headers("/sessions/{session_key}/commit/", "post", "201") == ["Idempotent-Replayed"]
    assert headers("/orders/{ref}/", "get", "200") == ["ETag"]
    assert headers("/sessions/", "get", "200") == []
    assert headers("/sessions/{session_key}/commit/", "post", "default") == []
    replayed = paths["/sessions/"]["post"]["responses"]["201"]["headers"]["Idempotent-Replayed"]
    assert replayed["schema"] == {"type": "string", "enum": ["true"]}


def _nested(levels: int) -> Any:
    """``levels`` levels of objects and arrays, alternating, around a scalar."""
    value: Any = 1
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("where", ["data", "meta"])
def test_the_nesting_limit_is_the_documents_x_max_depth(doc, api, where):
    """Every request body carries ``x-max-depth`` (the body is level 1): a body nested
    exactly that deep is taken, one level more is the 400 ``malformed_request`` that the
    operation's documented 400 names."""
    schemas = doc["components"]["schemas"]
    depths = {s["x-max-depth"] for n, s in schemas.items() if n.endswith("InRequest") and n != "OpInRequest"}
    (limit,) = depths
    assert "malformed_request" in doc["paths"]["/api/sessions/"]["post"]["responses"]["400"]["description"]
    open_session(api)

    def send(levels: int) -> Any:
        if where == "data":  # {"data": {...}}: data is level 2
            return api.post_json("/api/sessions/", {"channel_code": "pos", "data": {"x": _nested(levels - 2)}})
        # {"ops": [{"meta": {...}}]}: meta is level 4
        op = {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500, "meta": {"x": _nested(levels - 4)}}
        return api.post_json("/api/sessions/SESS-001/modify/", {"channel_code": "pos", "ops": [op]})

    assert send(limit).status_code in (200, 201)
    assert "nested deeper than" in problem(send(limit + 1), 400, "malformed_request")["detail"]


def test_the_data_limit_is_the_documents_x_max_json_bytes(doc, api, settings):
    """``data`` as compact JSON: exactly ``x-max-json-bytes`` is taken, a byte more is
    the 400 ``max_size`` at ``/data`` the description names; the figure follows the
    setting."""
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_DATA_BYTES": 100}
    doc = data(api.get("/api/schema/?format=json"))
    field = doc["components"]["schemas"]["SessionCreateInRequest"]["properties"]["data"]
    limit = field["x-max-json-bytes"]
    assert limit == 100 and "400 ``max_size`` at ``/data``" in field["description"]
    shell = len(b'{"s":""}')
    taken = api.post_json("/api/sessions/", {"channel_code": "pos", "data": {"s": "x" * (limit - shell)}})
    assert taken.status_code == 201, taken.content
    refused = api.post_json("/api/sessions/", {"channel_code": "pos", "data": {"s": "x" * (limit - shell + 1)}})
    error = problem(refused, 400, "validation_error")["errors"][0]
    assert (error["pointer"], error["code"]) == ("/data", "max_size")


def test_every_operation_with_a_body_documents_the_413_it_answers(doc, api, settings):
    """The 413 is a documented answer of every operation that takes a body, with the
    setting's figure; a body one byte over it gets exactly that answer."""
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_BODY_BYTES": 300}
    doc = data(api.get("/api/schema/?format=json"))
    with_body = [(path, op) for path, item in doc["paths"].items() for op in item.values()
                 if isinstance(op, dict) and "requestBody" in op]
    posts = [(path, item["post"]) for path, item in doc["paths"].items() if "post" in item]
    # Every POST but a directive retry, which reads no body (payments' routes included).
    assert [path for path, _op in with_body] == [path for path, _op in posts if not path.endswith("/retry/")]
    assert len(with_body) >= 6
    for _path, op in with_body:
        assert "payload_too_large" in op["responses"]["413"]["description"]
        assert "(300 bytes here)" in op["responses"]["413"]["description"]
        assert op["responses"]["413"]["content"]["application/problem+json"]
    body = {"channel_code": "pos", "data": {"s": ""}}
    body["data"]["s"] = "x" * (300 - len(json.dumps(body, separators=(",", ":")).encode()))
    raw = json.dumps(body, separators=(",", ":"))
    assert len(raw) == 300
    assert api.post("/api/sessions/", raw, content_type="application/json").status_code == 201
    over = raw.replace('"s":"', '"s":"x')
    problem(api.post("/api/sessions/", over, content_type="application/json"), 413, "payload_too_large")


def test_no_integer_in_the_document_goes_past_what_the_parser_takes(doc):
    """The parser refuses integers beyond ±(2^53 − 1) everywhere: no schema, an
    extension's included, may declare a larger maximum (a client would send it)."""
    too_big = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer" and node.get("maximum", 0) > 2**53 - 1:
                too_big.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(doc, "")
    assert too_big == []
