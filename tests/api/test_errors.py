"""Every error is problem+json with a stable code; bad input is a 4xx that changes nothing."""

from __future__ import annotations

import pytest
from django.test import override_settings

from omniman.models import Session

from .conftest import data, open_session, problem

pytestmark = pytest.mark.django_db

MODIFY = "/api/sessions/SESS-001/modify/"


@pytest.mark.parametrize("raw", [
    b"not json",
    b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": NaN, "unit_price_q": 5}]}',
    b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": Infinity, "unit_price_q": 5}]}',
    b'{"channel_code": "pos", "channel_code": "web", "ops": []}',
    b'{"channel_code": "pos", "ops": [{"op": "add_line", "op": "remove_line"}]}',
    b"[1, 2]",
    b'"text"',
    b"\xff\xfe{}",
    b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": "\\u0000"}]}',
    b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": "\\ud800"}]}',
    b'{"a": ' * 40 + b"1" + b"}" * 40,
    b"[" * 100000 + b"]" * 100000,
    b'{"channel_code": "pos",',
])
def test_malformed_bodies_are_400_and_change_nothing(api, raw):
    open_session(api)
    problem(api.post(MODIFY, raw, content_type="application/json"), 400, "malformed_request")
    assert Session.objects.get().rev == 0


BIG = b"1" + b"0" * 30  # a 31-digit integer: valid JSON, beyond any column


@pytest.mark.parametrize(("raw", "pointer"), [
    (b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": ' + BIG + b', "unit_price_q": 5}]}',
     "/ops/0/qty"),
    (b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 1e400, "unit_price_q": 5}]}',
     "/ops/0/qty"),
    (b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": ' + BIG + b"}]}",
     "/ops/0/unit_price_q"),
    (b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1e400}]}',
     "/ops/0/unit_price_q"),
    (b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": 1e400}]}', "/ops/0/value"),
    (b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": [1.5, -1e300]}]}',
     "/ops/0/value/1"),
    (b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": 9007199254740992}]}',
     "/ops/0/value"),
    (b'{"channel_code": "pos", "ops": [{"op": "set_data", "path": "a", "value": {"b": [1, -' + BIG + b"]}}]}",
     "/ops/0/value/b/1"),
    (b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 5, '
     b'"meta": {"x/y": ' + BIG + b"}}]}", "/ops/0/meta/x~1y"),
    (b'{"channel_code": "pos", "rev": ' + BIG + b', "ops": [{"op": "merge_lines"}]}', "/rev"),
])
def test_a_huge_valid_number_is_a_validation_error_at_its_pointer(api, raw, pointer):
    """Valid JSON is never malformed: a number out of its field's range, or beyond
    ±(2^53 − 1) (or not finite as a float) in free JSON, is refused at its pointer."""
    open_session(api)
    body = problem(api.post(MODIFY, raw, content_type="application/json"), 400, "validation_error")
    assert [e["pointer"] for e in body["errors"]] == [pointer]
    assert Session.objects.get().rev == 0


def test_a_huge_number_with_an_idempotency_key_is_a_validation_error(api):
    open_session(api)
    raw = b'{"channel_code": "pos", "ops": [{"op": "add_line", "sku": "A", "qty": ' + BIG + b', "unit_price_q": 5}]}'
    response = api.post(MODIFY, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="K-1")
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/ops/0/qty"


def test_a_huge_integer_in_data_is_refused_at_its_pointer(api):
    response = api.post_json("/api/sessions/", b'{"channel_code": "pos", "data": {"n": [' + BIG + b"]}}")
    assert problem(response, 400, "validation_error")["errors"][0]["pointer"] == "/data/n/0"
    assert not Session.objects.exists()


def test_the_largest_safe_integer_in_data_is_kept(api):
    response = api.post_json("/api/sessions/", {"channel_code": "pos", "data": {"n": 2**53 - 1, "m": -(2**53 - 1)}})
    assert data(response)["data"] == {"n": 2**53 - 1, "m": -(2**53 - 1)}


def test_non_utf8_charset_is_malformed(api):
    open_session(api)
    response = api.post(MODIFY, b'{"channel_code": "pos"}', content_type="application/json; charset=latin-1")
    problem(response, 400, "malformed_request")


def test_not_json_is_415(api):
    open_session(api)
    problem(api.post(MODIFY, b"channel_code=pos", content_type="application/x-www-form-urlencoded"),
            415, "unsupported_media_type")
    problem(api.generic("POST", MODIFY, b'{"channel_code": "pos"}', content_type=""), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(api, settings):
    open_session(api)
    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_BODY_BYTES": 1000}
    ops = [{"op": "set_data", "path": "a", "value": "x" * 100}] * 20
    response = api.post_json(MODIFY, {"channel_code": "pos", "ops": ops})
    problem(response, 413, "payload_too_large")
    assert Session.objects.get().rev == 0


def test_413_drains_a_body_sent_without_content_length(api, settings):
    """A chunked body (no Content-Length) is read up to the limit, then dropped."""
    from io import BytesIO

    settings.OMNIMAN = {**settings.OMNIMAN, "MAX_BODY_BYTES": 10}
    from omniman_api.errors import PayloadTooLarge
    from omniman_api.parsers import read_body

    stream = BytesIO(b'{"channel_code": "' + b"p" * 5000 + b'"}')
    with pytest.raises(PayloadTooLarge) as info:
        read_body(stream, {})
    assert info.value.code == "payload_too_large"
    assert stream.read() == b""  # everything was read and dropped


def test_no_credentials_is_401_with_www_authenticate(anon, pos):
    response = anon.get("/api/sessions/")
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    anon.credentials(HTTP_AUTHORIZATION="Token nope")
    problem(anon.get("/api/sessions/"), 401, "not_authenticated")


@pytest.mark.parametrize(
    ("classes", "challenge"),
    [
        # DRF's defaults: Session first, which names no scheme (DRF would answer 403).
        (None, 'Basic realm="api"'),
        (["rest_framework.authentication.SessionAuthentication"], 'Session realm="api"'),
        (["rest_framework.authentication.SessionAuthentication",
          "rest_framework.authentication.TokenAuthentication"], "Token"),
    ],
)
def test_no_credentials_is_401_whatever_authentication_comes_first(anon, pos, settings, classes, challenge):
    settings.REST_FRAMEWORK = {} if classes is None else {"DEFAULT_AUTHENTICATION_CLASSES": classes}
    response = anon.get("/api/sessions/")
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == challenge


def test_unknown_paths_under_the_prefix_are_404(api):
    for path in ("/api/nope", "/api/sessions/SESS-001/fly/", "/api/sessions/bad key!/", "/api/"):
        problem(api.get(path), 404, "not_found")
        problem(api.post_json(path, {}), 404, "not_found")


def test_wrong_method_is_405(api):
    response = api.delete("/api/sessions/")
    problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    problem(api.get("/api/sessions/SESS-001/commit/"), 405, "method_not_allowed")


@override_settings(REST_FRAMEWORK={
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_THROTTLE_CLASSES": ["omniman_api.throttling.OmnimanUserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"omniman": "2/min"},
})
def test_throttled_is_429_with_retry_after(api):
    from django.core.cache import cache

    cache.clear()
    assert api.get("/api/channels/").status_code == 200
    assert api.get("/api/channels/").status_code == 200
    response = api.get("/api/channels/")
    problem(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    cache.clear()


def test_health_needs_no_auth(anon, db):
    response = anon.get("/api/health/")
    assert response.status_code == 200
    body = data(response)
    assert body["status"] == "ok" and body["database"] == "ok" and body["version"]


def test_query_parameters_are_pointed_at_like_fields(api):
    body = problem(api.get("/api/orders/?created_after=yesterday"), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/created_after"
    body = problem(api.get("/api/sessions/?cursor=%%%"), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/cursor"
    body = problem(api.get("/api/sessions/?page_size=-1"), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/page_size"
    body = problem(api.get("/api/sessions/X/?channel_code=bad%00code"), 400, "validation_error")
    assert body["errors"][0]["pointer"] == "/channel_code"
