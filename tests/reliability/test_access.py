"""Access: another channel's objects are indistinguishable from missing ones on every
endpoint, credentials are required, operators alone see directives, tokens never reach
the logs, the admin is for staff, and session-authenticated writes need the CSRF token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.test import Client
from rest_framework.test import APIClient

from omniman.contrib.payments.models import Payment, Refund
from omniman.models import Directive, IdempotencyKey, Order, OrderEvent, Session
from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op, make_channel

from .conftest import make_user

pytestmark = pytest.mark.django_db

SESSION = "SESS-001"


def client(token: str = "") -> APIClient:
    api = APIClient()
    if token:
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def send(api: Any, method: str, path: str, body: Any = None) -> Any:
    if method == "GET":
        return api.get(path)
    raw = body if isinstance(body, bytes) else orjson.dumps(body or {})
    return api.post(path, raw, content_type="application/json")


def endpoints(key: str, ref: str) -> list[tuple[str, str, Any]]:
    """Every endpoint that names a session or an order of the pos channel."""
    body = {"channel_code": "pos"}
    return [
        ("GET", f"/api/sessions/{key}/?channel_code=pos", None),
        ("POST", f"/api/sessions/{key}/modify/", {**body, "ops": [add_line_op()]}),
        ("POST", f"/api/sessions/{key}/commit/", {**body, "idempotency_key": "K-1"}),
        ("POST", f"/api/sessions/{key}/abandon/", body),
        ("POST", f"/api/sessions/{key}/resolve/", {**body, "issue_id": "i1", "action_id": "a1"}),
        ("GET", f"/api/orders/{ref}/", None),
        ("POST", f"/api/orders/{ref}/transition/", {"to": "preparing"}),
        ("GET", f"/api/orders/{ref}/payments/", None),
        ("POST", f"/api/orders/{ref}/payments/", {"method": "cash", "amount_q": 100}),
        ("POST", f"/api/orders/{ref}/refunds/", {"amount_q": 100, "reason": "r"}),
        ("GET", f"/api/orders/{ref}/events/", None),
    ]


def database_state() -> tuple[Any, ...]:
    return (
        list(Session.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        OrderEvent.objects.count(),
        IdempotencyKey.objects.count(),
        Directive.objects.count(),
        Payment.objects.count(),
        Refund.objects.count(),
    )


@pytest.fixture
def world(pos: Any, web: Any) -> dict[str, Any]:
    """A committed order and an open session in pos; an insider granted pos and web, an
    outsider granted only ifood, a staff operator, and a superuser."""
    ifood = make_channel("ifood")
    create_session(channel="pos", session_key="DONE-1")
    modify_session(channel="pos", session_key="DONE-1", ops=[add_line_op()])
    ref = commit_session(channel=pos, session_key="DONE-1").order_ref
    create_session(channel="pos", session_key=SESSION)
    modify_session(channel="pos", session_key=SESSION, ops=[add_line_op()])
    return {
        "ref": ref,
        "insider": make_user("insider", pos, web)[1],
        "outsider": make_user("outsider", ifood)[1],
        "operator": make_user("operator", pos, staff=True)[1],
        "root": make_user("root", superuser=True)[1],
    }


def test_every_endpoint_answers_another_channels_object_exactly_like_a_missing_one(world: dict[str, Any]) -> None:
    outsider, insider = client(world["outsider"]), client(world["insider"])
    before = database_state()
    hidden = endpoints(SESSION, world["ref"])
    missing = endpoints("NOPE-01", "POS-NOPE0-NOPE0")
    for (method, path, body), (_, missing_path, missing_body) in zip(hidden, missing, strict=True):
        a = send(outsider, method, path, body)
        b = send(outsider, method, missing_path, missing_body)
        c = send(insider, method, missing_path, missing_body)
        assert a.status_code == b.status_code == c.status_code == 404, (path, a.content)
        assert a.content == b.content, path  # byte for byte: nothing to tell them apart
        assert a["Content-Type"] == "application/problem+json"
        assert not a.has_header("ETag") and not a.has_header("Location")
    # Creating in a hidden channel answers like creating in a channel that does not exist.
    a = send(outsider, "POST", "/api/sessions/", {"channel_code": "pos", "session_key": "X"})
    b = send(outsider, "POST", "/api/sessions/", {"channel_code": "nowhere", "session_key": "X"})
    assert a.status_code == b.status_code == 404 and a.content == b.content
    # Lists and the stream show nothing of pos, filtered or not.
    for path in ("/api/sessions/", "/api/sessions/?channel_code=pos", "/api/orders/",
                 "/api/orders/?channel_code=pos", "/api/orders/stream/"):
        answer = outsider.get(path)
        assert answer.status_code == 200 and orjson.loads(answer.content)["results"] == [], path
    assert [c["code"] for c in orjson.loads(outsider.get("/api/channels/").content)["results"]] == ["ifood"]
    assert database_state() == before  # nothing the outsider sent changed anything
    # The insider sees them (so the 404s above were about access, not typos).
    for method, path, _ in hidden[:1] + hidden[5:6] + hidden[-1:]:
        assert send(insider, method, path).status_code == 200, path


ALL_ENDPOINTS = [
    ("GET", "/api/channels/"),
    ("GET", "/api/sessions/"),
    ("POST", "/api/sessions/"),
    ("GET", f"/api/sessions/{SESSION}/?channel_code=pos"),
    ("POST", f"/api/sessions/{SESSION}/modify/"),
    ("POST", f"/api/sessions/{SESSION}/commit/"),
    ("POST", f"/api/sessions/{SESSION}/abandon/"),
    ("POST", f"/api/sessions/{SESSION}/resolve/"),
    ("GET", "/api/orders/"),
    ("GET", "/api/orders/stream/"),
    ("GET", "/api/orders/POS-AAAAA-AAAAA/"),
    ("POST", "/api/orders/POS-AAAAA-AAAAA/transition/"),
    ("GET", "/api/orders/POS-AAAAA-AAAAA/events/"),
    ("GET", "/api/orders/POS-AAAAA-AAAAA/payments/"),
    ("POST", "/api/orders/POS-AAAAA-AAAAA/payments/"),
    ("POST", "/api/orders/POS-AAAAA-AAAAA/refunds/"),
    ("GET", "/api/directives/"),
    ("GET", "/api/directives/metrics/"),
    ("POST", "/api/directives/1/retry/"),
]


def test_the_list_covers_every_route() -> None:
    from django.urls import resolve

    from omniman_api.urls import urlpatterns

    covered = {resolve(path.split("?")[0]).url_name for _, path in ALL_ENDPOINTS}
    assert covered | {"health", "schema", "not-found"} == {p.name for p in urlpatterns}


@pytest.mark.parametrize("credentials", ["", "Token nope", "Token ", "Bearer x", "Basic ZGVtbzpkZW1v"])
def test_every_endpoint_needs_credentials(world: dict[str, Any], credentials: str) -> None:
    api = APIClient()
    if credentials:
        api.credentials(HTTP_AUTHORIZATION=credentials)
    before = database_state()
    for method, path in ALL_ENDPOINTS:
        answer = send(api, method, path, {"channel_code": "pos", "ops": [add_line_op()]})
        assert answer.status_code == 401, (path, answer.status_code)
        assert orjson.loads(answer.content)["code"] == "not_authenticated"
    assert database_state() == before
    # Only health and the schema are public.
    assert APIClient().get("/api/health/").status_code == 200
    assert APIClient().get("/api/schema/").status_code == 200


def test_directives_are_403_for_everyone_but_operators(world: dict[str, Any]) -> None:
    failed = Directive.objects.create(topic="payment.capture", payload={}, status="failed", attempts=5)
    for token in (world["insider"], world["outsider"]):
        for method, path in [("GET", "/api/directives/"), ("GET", "/api/directives/metrics/"),
                             ("POST", f"/api/directives/{failed.pk}/retry/")]:
            answer = send(client(token), method, path)
            assert answer.status_code == 403 and orjson.loads(answer.content)["code"] == "permission_denied"
    failed.refresh_from_db()
    assert failed.status == "failed" and failed.attempts == 5
    for token in (world["operator"], world["root"]):
        assert client(token).get("/api/directives/").status_code == 200
        assert client(token).get("/api/directives/metrics/").status_code == 200


@pytest.fixture
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record at any level, from every logger, while the test runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(level=logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("django", "django.request", "omniman", "omniman_api")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for lg, old in zip(loggers, levels, strict=True):
            lg.setLevel(old)


def test_tokens_never_reach_the_logs(world: dict[str, Any], captured_logs: list[logging.LogRecord]) -> None:
    token = world["insider"]
    api = client(token)
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")  # a near miss is a secret too
    for method, path in ALL_ENDPOINTS:
        send(api, method, path, {"channel_code": "pos", "ops": [add_line_op()]})
        send(client(wrong), method, path, {"channel_code": "pos"})
    send(api, "POST", f"/api/sessions/{SESSION}/modify/", b'{"bad json')
    send(api, "POST", f"/api/sessions/{SESSION}/modify/", {"channel_code": "pos", "ops": [{"op": "nope"}]})
    api.post(f"/api/sessions/{SESSION}/modify/", b"{}", content_type="text/plain")
    api.get("/api/nowhere/")
    assert len(captured_logs) > 10  # the requests did log (4xx warnings, commits)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in captured_logs:
        text = formatter.format(record) + repr(vars(record))
        assert token not in text and wrong not in text, record.getMessage()


def test_the_admin_is_for_staff_only(world: dict[str, Any]) -> None:
    make_user("clerk2", staff=False)
    make_user("boss", staff=True, superuser=True)
    pages = ["/admin/", "/admin/omniman/order/", "/admin/omniman/session/", "/admin/omniman/directive/"]
    anonymous = Client()
    for page in pages:
        answer = anonymous.get(page)
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"], page
    clerk = Client()
    assert clerk.login(username="clerk2", password="pw")
    for page in pages:
        answer = clerk.get(page)
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"], page
    # An API token does not open the admin either.
    assert Client(HTTP_AUTHORIZATION=f"Token {world['root']}").get("/admin/").status_code == 302
    boss = Client()
    assert boss.login(username="boss", password="pw")
    for page in pages:
        assert boss.get(page).status_code == 200, page
    assert world["ref"].encode() in boss.get("/admin/omniman/order/").content


def test_session_authenticated_writes_need_the_csrf_token(world: dict[str, Any]) -> None:
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="insider", password="pw")
    body = orjson.dumps({"channel_code": "pos", "ops": [add_line_op()]})
    path = f"/api/sessions/{SESSION}/modify/"
    before = database_state()
    for write_path, write_body in [
        (path, body),
        ("/api/sessions/", orjson.dumps({"channel_code": "pos", "session_key": "CSRF-1"})),
        (f"/api/sessions/{SESSION}/commit/", orjson.dumps({"channel_code": "pos"})),
        (f"/api/sessions/{SESSION}/abandon/", orjson.dumps({"channel_code": "pos"})),
        (f"/api/orders/{world['ref']}/transition/", orjson.dumps({"to": "preparing"})),
    ]:
        answer = browser.post(write_path, write_body, content_type="application/json")
        assert answer.status_code == 403, (write_path, answer.content)
        assert answer["Content-Type"] == "application/problem+json"
        assert orjson.loads(answer.content)["code"] == "permission_denied"
    assert database_state() == before
    # Reads need no token, and a write with the token from the cookie goes through.
    assert browser.get(f"/api/sessions/{SESSION}/?channel_code=pos").status_code == 200
    browser.get("/admin/login/")  # any page that renders a form sets the cookie
    csrf = browser.cookies["csrftoken"].value
    answer = browser.post(path, body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert answer.status_code == 200, answer.content
    # A token-authenticated client needs no CSRF token (no cookie, no ambient authority).
    api = APIClient(enforce_csrf_checks=True)
    api.credentials(HTTP_AUTHORIZATION=f"Token {world['insider']}")
    assert send(api, "POST", path, {"channel_code": "pos", "ops": [add_line_op()]}).status_code == 200
