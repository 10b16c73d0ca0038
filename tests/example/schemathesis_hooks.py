"""schemathesis hooks for ``test_schemathesis.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

Four jobs:

* Steer part of the generated requests to what exists: a valid ``channel_code`` is
  replaced, one time in two, by a seeded channel, and a valid ``session_key`` or
  ``ref`` by a seeded session or order (the values stay valid by the schema; only
  requests that would have been valid anyway change). Without this nearly every
  request answers 404 and the stateful phase never creates a session.
* Keep the order stream's waits short: a ``timeout`` of 0 to 1e308 seconds is valid
  and honoured up to ``STREAM_MAX_TIMEOUT_SECONDS`` (25 s); a generated one is cut
  to 0.05 s, so that a hundred of them do not hold the server for minutes.
* Say which refusals of a schema-valid request SPEC allows. The OpenAPI document
  declares every rule on a request's shape that holds whatever the channel or the
  stored state; a request valid by it may still be refused (400) for a rule that
  depends on the channel or the stored state (each operation's description names
  them), or for a JSON number written with a fraction. A ``Schema-valid request
  rejected`` failure is dropped only when every error of the 400 is one of those;
  any other refusal stays a failure.
* Hold the order stream's ``after`` to its content schema: the document declares the
  cursor's pattern and, with ``contentSchema``, what it must decode to; schemathesis
  checks the pattern only, so a refusal at ``/after`` of a value that does not decode
  to a cursor is dropped.
* Give the stateful phase a way through: it follows the document's links (create →
  modify → commit → transition), but generated creates nearly all name a channel
  that does not exist or carry an invalid import, generated ops and statuses are
  nearly always refused, and the steering above often replaces a linked key or
  channel, so a chain of its own would hardly ever reach a commit. In that phase
  only (the test runs it apart from the other three, which fuzz every operation with
  generated data), three creates in four open a session on a channel that commits
  without more (``pos``, ``ifood``); three modifies in four go to a session the phase
  made itself, with a valid ``add_line`` for its channel; every commit, once the
  phase has a session with lines on one of those channels, goes to one of them; and
  three transitions in four move an order the phase committed one step along the
  example's flow. Every stateful call is written to ``FUZZ_LOG`` (one JSON line) so
  the test can see that the chain was walked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import zlib
from typing import Any

import schemathesis

STREAM_WAIT = 0.05
STATEFUL_LOG = os.environ.get("FUZZ_LOG", "")
#: The example's channels by pricing (omniman_seed): the price an add_line needs.
EXTERNAL_PRICING = {"pos", "ifood"}
#: The example's channels whose sessions commit with lines alone (no required checks).
COMMITTABLE = {"pos", "ifood"}
#: The example's order flow (``CAFE_FLOW`` of omniman_seed): the next statuses.
FLOW = {"new": ["preparing", "cancelled"], "preparing": ["ready", "cancelled"], "ready": ["completed", "cancelled"]}
IDENT = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
CHANNELS = [c for c in os.environ.get("FUZZ_CHANNELS", "").split(",") if c]
SESSIONS = [s for s in os.environ.get("FUZZ_SESSIONS", "").split(",") if s]
ORDERS = [o for o in os.environ.get("FUZZ_ORDERS", "").split(",") if o]

# (code, pointer suffix or "") of the refusals that depend on the channel or the stored
# state, as the operations' descriptions say.
STATE_RULES = {
    ("unknown_line", "/line_id"),       # no such line in the session
    ("duplicate", "/line_id"),          # the line exists already
    ("unknown_sku", "/sku"),            # not in the channel's catalog (internal pricing)
    ("not_allowed", "/unit_price_q"),   # a price on an internal-pricing channel
    ("not_allowed", "/op"),             # set_price on an internal-pricing channel
    ("required", "/unit_price_q"),      # no price on an external-pricing channel
    ("max_lines", ""),                  # MAX_LINES_PER_SESSION, counting stored lines
    ("max_total", ""),                  # a total over 2^53 - 1, counting stored lines
    ("max_size", ""),                   # data over MAX_DATA_BYTES, counting stored data
    ("not_an_object", "/path"),         # a set_data path through a stored non-object
    ("inactive_channel", "/channel_code"),
    ("unknown_issue", "/issue_id"),
    ("unknown_action", "/action_id"),
    # Line pricing: the options the pricing backend offers for the line's sku (internal
    # pricing; on replace_sku, pointed at the sku), and what a host's custom op refuses.
    ("unknown_option", ""),
    ("max_options", ""),
    ("required_option", ""),
    ("unknown_coupon", "/code"),
    # Payments (omniman.contrib.payments): the methods configured, a method that takes
    # no tendered_q, the order's lines, what earlier refunds left of a line, its
    # payments.
    ("unknown_method", "/method"),
    ("not_allowed", "/tendered_q"),
    ("max_qty_left", "/qty"),
    ("unknown_payment", "/payment_id"),
    ("split_required", "/payment_id"),
    ("unknown_method", "/payment_id"),
    ("zero_total", "/lines"),
}
# The cross-field rules JSON Schema cannot state: the Idempotency-Key header and the
# body's idempotency_key, both given, must be equal (SPEC, Idempotency); a line's option
# codes are unique; a payment's tendered_q is at least its amount_q + tip_q.
CROSS_FIELD = {("mismatch", "/idempotency_key"), ("duplicate", "/code"), ("below_amount", "/tendered_q"),
               # "commit": true needs a key, in the body or in the header.
               ("required", "/idempotency_key")}
# The rule of the clock: an import's placed_at within the server's bounds around now
# (the create operation's description names it).
CLOCK_RULES = {("out_of_range", "/placed_at")}


def _pick(options: list[str], original: str) -> str:
    """A seeded value one time in two, chosen by the original (so shrinking is stable)."""
    if not options:
        return original
    n = zlib.crc32(original.encode())
    return options[(n // 2) % len(options)] if n % 2 == 0 else original


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict):
        code = body.get("channel_code")
        if isinstance(code, str) and IDENT.match(code):
            body["channel_code"] = _pick(CHANNELS, code)
    return body


@schemathesis.hook
def map_query(context: Any, query: Any) -> Any:
    if isinstance(query, dict):
        code = query.get("channel_code")
        if isinstance(code, str) and IDENT.match(code):
            query["channel_code"] = _pick(CHANNELS, code)
        timeout = query.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > STREAM_WAIT:
            query["timeout"] = STREAM_WAIT
    return query


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: Any) -> Any:
    if not isinstance(path_parameters, dict):
        return path_parameters
    for name, options in (("session_key", SESSIONS), ("ref", ORDERS)):
        value = path_parameters.get(name)
        if isinstance(value, str) and IDENT.match(value):
            path_parameters[name] = _pick(options, value)
    return path_parameters


def _pointed(body: Any, pointer: str) -> Any:
    node = body
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            return None
    return node


def allowed_refusal(body: Any, response_body: Any) -> bool:
    """True when every error of a 400 is a rule of the channel or the stored state, the
    header/body key rule, or points at a number written with a fraction."""
    if not isinstance(response_body, dict) or response_body.get("code") != "validation_error":
        return False
    errors = response_body.get("errors") or []
    if not errors:
        return False
    for error in errors:
        code, pointer = error.get("code", ""), error.get("pointer", "")
        if any(code == c and pointer.endswith(suffix) for c, suffix in STATE_RULES | CROSS_FIELD | CLOCK_RULES):
            continue
        if isinstance(_pointed(body, pointer), float):
            continue  # a JSON number written with a fraction (500.0, 1.0010000000000001)
        return False
    return True


MAX_POSITION = 2**53 - 1


def _valid_stream_cursor(raw: Any) -> bool:
    """``after`` as the document's ``contentSchema`` says (schemathesis checks only the
    pattern; content keywords are left to the application): base64url of a JSON object,
    channel code → an integer 0 to 2^53 − 1."""
    if not isinstance(raw, str):
        return False
    try:
        content = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return False
    return isinstance(content, dict) and all(
        IDENT.match(code) and type(seq) is int and 0 <= seq <= MAX_POSITION for code, seq in content.items()
    )


def refused_cursor(query: Any, response_body: Any) -> bool:
    """True when a 400 points at ``after`` only, and ``after`` is not a cursor by the
    document's content schema."""
    errors = response_body.get("errors") or [] if isinstance(response_body, dict) else []
    return bool(errors) and all(e.get("pointer") == "/after" for e in errors) and not _valid_stream_cursor(
        (query or {}).get("after"))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", "") != "ST202" or response.status_code != 400:
        return True
    try:
        payload = json.loads(response.content)
    except ValueError:
        return True
    return not (allowed_refusal(case.body, payload) or refused_cursor(case.query, payload))


def _stateful(case: Any) -> bool:
    meta = getattr(case, "_meta", None)
    return meta is not None and str(meta.phase.name) == "stateful"


def _coin(value: Any) -> int:
    return zlib.crc32(json.dumps(value, sort_keys=True, default=str).encode())


#: What the stateful phase made itself (its 2xx answers): open sessions (key → channel,
#: rev) and the orders it committed (ref → status).
OWN_SESSIONS: dict[str, tuple[str, int]] = {}
OWN_ORDERS: dict[str, str] = {}


def _steer(case: Any, path: dict[str, str], body: dict[str, Any]) -> None:
    case.path_parameters = {**(case.path_parameters or {}), **path}
    case.body = body
    # A generated If-Match would be stale, a generated key reused. The headers are a
    # case-insensitive mapping (not a dict): delete in place.
    for name in [name for name in (case.headers or {}) if name.lower() in {"if-match", "idempotency-key"}]:
        del case.headers[name]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    """Stateful phase: three creates in four open a session on a committable channel;
    every commit while the phase has a committable session with lines of its own, and
    three modifies or transitions in four, go to what the phase made itself (the link
    values are otherwise often replaced by the steering above), with no body beyond the
    channel, a valid add_line, or the next status of the flow."""
    if not _stateful(case):
        return
    label = case.operation.label
    n = _coin([case.body if isinstance(case.body, dict) else None, case.path_parameters])
    if label.endswith("/commit/"):
        filled = sorted(k for k, (channel, rev) in OWN_SESSIONS.items() if rev and channel in COMMITTABLE)
        if filled:  # the chain's narrow step: every time
            key = filled[(n // 4) % len(filled)]
            _steer(case, {"session_key": key}, {"channel_code": OWN_SESSIONS[key][0]})
        return
    if n % 4 == 0:
        return  # one in four as generated
    if label == "POST /api/sessions/":
        channels = sorted(COMMITTABLE)
        _steer(case, {}, {"channel_code": channels[(n // 4) % len(channels)]})
    elif label.endswith("/modify/") and OWN_SESSIONS:
        key = sorted(OWN_SESSIONS)[(n // 4) % len(OWN_SESSIONS)]
        channel, rev = OWN_SESSIONS[key]
        line: dict[str, Any] = {"op": "add_line", "sku": "COFFEE", "qty": 1}
        if channel in EXTERNAL_PRICING:
            line["unit_price_q"] = 500
        _steer(case, {"session_key": key}, {"channel_code": channel, "rev": rev, "ops": [line]})
    elif label.endswith("/transition/"):
        moving = sorted(ref for ref, status in OWN_ORDERS.items() if status in FLOW)
        if moving:
            ref = moving[(n // 4) % len(moving)]
            nexts = FLOW[OWN_ORDERS[ref]]
            _steer(case, {"ref": ref}, {"to": nexts[(n // 16) % len(nexts)]})


def _remember(case: Any, status: int, answer: Any) -> None:
    if not isinstance(answer, dict) or not 200 <= status < 300:
        return
    label = case.operation.label
    if label.startswith("POST /api/sessions") and answer.get("state") == "open":
        OWN_SESSIONS[answer["session_key"]] = (answer["channel_code"], answer["rev"])
    elif label.startswith("POST /api/sessions") and "session_key" in answer:
        OWN_SESSIONS.pop(answer["session_key"], None)  # committed or abandoned
    if label.endswith("/commit/") and "order_ref" in answer:
        OWN_ORDERS[answer["order_ref"]] = "new"
    elif label.endswith("/transition/") and (case.path_parameters or {}).get("ref") in OWN_ORDERS:
        OWN_ORDERS[case.path_parameters["ref"]] = answer.get("status", "")


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if not _stateful(case):
        return
    try:
        answer = json.loads(response.content) if response.content else None
    except ValueError:
        answer = None
    _remember(case, response.status_code, answer)
    if not STATEFUL_LOG:
        return
    record = {
        "operation": case.operation.label, "status": response.status_code,
        "path": case.path_parameters or {},
        "body": case.body if isinstance(case.body, dict) else None,
        "answer": answer if isinstance(answer, dict) else None,
    }
    with open(STATEFUL_LOG, "a") as log:
        log.write(json.dumps(record, default=str) + "\n")
