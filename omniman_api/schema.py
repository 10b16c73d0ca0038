"""The OpenAPI 3 document (drf-spectacular), served at ``schema/`` without auth.

The serializers here describe shapes for the document only: views render plain dicts
(:mod:`omniman_api.serializers`). Every operation also answers problem+json for its
errors (the ``default`` response, added by :func:`postprocess`) and declares its
``ETag``/``Location``/``Idempotent-Replayed`` answer headers with its parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema_field
from drf_spectacular.utils import extend_schema as _extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers as rf
from rest_framework.permissions import AllowAny

from omniman import __version__, conf, extensions
from omniman.ops import MAX_OPTION_QTY, MAX_OPTIONS, MAX_PATH_SEGMENTS, OP_FIELDS, CustomOp
from omniman.registry import registry
from omniman.validators import IDENT_PATTERN
from omniman_api.pagination import MAX_POSITION, STREAM_CURSOR_MAX
from omniman_api.parsers import MAX_DEPTH
from omniman_api.renderers import SchemaNegotiation

IDENT = rf"^{IDENT_PATTERN}$"  # OpenAPI patterns are ECMA: ``$``, not ``\Z``
# Strings the database can store: anything but NUL.
NO_NUL = r"^[^\x00]*$"
MAX_SAFE = 2**53 - 1
# An idempotency key: 1 to 255 printable ASCII characters. In a header, HTTP drops
# the spaces and tabs around a value, so there the key starts and ends with a visible
# character, and may be surrounded by spaces and tabs.
KEY_BODY = r"^[\x20-\x7e]{1,255}$"
KEY_HEADER = r"^[ \t]*[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?[ \t]*$"
# A decimal string above 0, at most 1,000,000, at most 3 decimal places once trailing
# zeros are dropped; with zero allowed (set_qty), also the spellings of 0.
QTY_TEXT = (r"\+?(?:0*[1-9][0-9]{0,5}(?:\.[0-9]{0,3}0*)?|0*1000000(?:\.0*)?|0*\.[0-9]{0,2}[1-9]0*)")
ZERO_TEXT = r"[+-]?(?:0+(?:\.0*)?|\.0+)"
PATH = rf"^[A-Za-z0-9_-]{{1,64}}(?:\.[A-Za-z0-9_-]{{1,64}}){{0,{MAX_PATH_SEGMENTS - 1}}}$"
CURSOR = r"^[np][0-9]{1,18}$"
STREAM_CURSOR = rf"^[A-Za-z0-9_-]{{1,{STREAM_CURSOR_MAX}}}$"
# An RFC 3339 date-time with seconds (at most microseconds) and an offset.
DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"


#: The base of the shapes below: they describe JSON objects, never a model instance.
Shape = rf.Serializer[dict[str, Any]]


F = TypeVar("F", bound=Callable[..., Any])


def extend_schema(**kwargs: Any) -> Callable[[F], F]:
    """drf-spectacular's ``extend_schema`` for a view method, based on its own
    ``AutoSchema`` whatever the host's ``DEFAULT_SCHEMA_CLASS``."""
    decorate = _extend_schema(**kwargs)

    def apply(method: F) -> F:
        method.schema = AutoSchema  # type: ignore[attr-defined]  # a function attribute drf-spectacular reads
        return decorate(method)

    return apply


class LineOption(Shape):
    code = rf.CharField()
    qty = rf.IntegerField()
    unit_price_q = rf.IntegerField()


class Adjustment(Shape):
    code = rf.CharField()
    # A declared field: DRF's metaclass takes it off the class (the stubs see Field.label).
    label = rf.CharField(allow_blank=True)  # type: ignore[assignment]
    kind = rf.ChoiceField(choices=["discount", "tax", "fee"])
    amount_q = rf.IntegerField()


class Line(Shape):
    line_id = rf.CharField()
    sku = rf.CharField()
    qty = rf.CharField(help_text="A canonical decimal string: \"2\", \"0.25\".")
    unit_price_q = rf.IntegerField()
    line_total_q = rf.IntegerField(help_text="round-half-even(qty × (unit_price_q + Σ option unit_price_q × qty)).")
    meta = rf.DictField()
    options = LineOption(many=True)
    adjustments = Adjustment(many=True)


class Check(Shape):
    rev = rf.IntegerField(allow_null=True)
    ok = rf.BooleanField()
    detail = rf.DictField()
    at = rf.CharField(allow_null=True)


class IssueAction(Shape):
    id = rf.CharField()
    label = rf.CharField()  # type: ignore[assignment]  # a declared field (see Adjustment)


class Issue(Shape):
    id = rf.CharField()
    code = rf.CharField()
    blocking = rf.BooleanField()
    message = rf.CharField(allow_blank=True)
    actions = IssueAction(many=True)


class SessionOut(Shape):
    session_key = rf.CharField()
    channel_code = rf.CharField()
    state = rf.ChoiceField(choices=["open", "committed", "abandoned"])
    rev = rf.IntegerField()
    items = Line(many=True)
    data = rf.DictField()  # type: ignore[assignment]  # a declared field, not Serializer.data
    pricing = rf.DictField()
    total_q = rf.IntegerField()
    currency = rf.CharField()
    checks = rf.DictField(child=Check())
    issues = Issue(many=True)
    handle_type = rf.CharField(allow_blank=True)
    handle_ref = rf.CharField(allow_blank=True)
    created_at = rf.DateTimeField()
    updated_at = rf.DateTimeField()
    expires_at = rf.DateTimeField(allow_null=True)
    order_ref = rf.CharField(required=False)


class OrderOut(Shape):
    ref = rf.CharField()
    channel_code = rf.CharField()
    session_key = rf.CharField()
    status = rf.CharField()
    items = Line(many=True)
    data = rf.DictField()  # type: ignore[assignment]  # a declared field, not Serializer.data
    pricing = rf.DictField()
    total_q = rf.IntegerField()
    currency = rf.CharField()
    external_ref = rf.CharField(allow_blank=True)
    number = rf.IntegerField(
        allow_null=True, min_value=1,
        help_text="The ticket number, per channel and business day; null when the channel numbers no tickets.",
    )
    business_day = rf.DateField(
        allow_null=True, help_text="The channel's business day at the commit (null for orders stored before numbers)."
    )
    placed_at = rf.DateTimeField(help_text="When the customer placed it: an import's placed_at, else the commit's time.")
    created_at = rf.DateTimeField()
    updated_at = rf.DateTimeField()


class CommitOut(Shape):
    order_ref = rf.CharField()
    status = rf.CharField()
    total_q = rf.IntegerField()
    currency = rf.CharField()
    items_count = rf.IntegerField()
    session_key = rf.CharField()
    channel_code = rf.CharField()


class EventOut(Shape):
    id = rf.IntegerField()
    type = rf.CharField(help_text="order.committed, order.status_changed, payment.*, refund.*, ...")
    actor = rf.CharField(allow_blank=True, help_text="The user who made the change; blank for the system.")
    payload = rf.DictField()
    created_at = rf.DateTimeField()


class DirectiveOut(Shape):
    id = rf.IntegerField()
    topic = rf.CharField()
    status = rf.ChoiceField(choices=["queued", "running", "done", "failed"])
    attempts = rf.IntegerField()
    max_attempts = rf.IntegerField()
    available_at = rf.DateTimeField()
    last_error = rf.CharField(allow_blank=True)
    payload = rf.DictField()
    dispatched_at = rf.DateTimeField(
        allow_null=True, help_text="When it was last sent to the workers; null when it waits for the reaper.")
    created_at = rf.DateTimeField()
    updated_at = rf.DateTimeField()


class DirectiveMetricsOut(Shape):
    queued = rf.IntegerField()
    running = rf.IntegerField()
    done = rf.IntegerField()
    failed = rf.IntegerField()
    oldest_queued_age_seconds = rf.FloatField(
        help_text="Seconds since the oldest queued directive was created (0 when none is queued).")
    oldest_due_wait_seconds = rf.FloatField(
        help_text="Seconds the longest-waiting due directive has been due (0 when none is): above a few "
                  "reaper intervals, workers or the reaper are not keeping up.")
    expired_leases = rf.IntegerField(help_text="Running directives whose lease expired (their worker is "
                                               "probably gone; the reaper queues them again).")


class ChannelOut(Shape):
    code = rf.CharField()
    name = rf.CharField()
    currency = rf.CharField()
    is_active = rf.BooleanField()
    pricing_policy = rf.ChoiceField(choices=["internal", "external"])
    edit_policy = rf.ChoiceField(choices=["open", "locked"])
    require_if_match = rf.BooleanField()


class HealthOut(Shape):
    status = rf.CharField()
    version = rf.CharField()
    database = rf.CharField()


def _page(name: str, child: type[Shape]) -> type[Shape]:
    return type(name, (Shape,), {
        "next": rf.URLField(allow_null=True),
        "previous": rf.URLField(allow_null=True),
        "results": child(many=True),
        "__module__": __name__,
    })


SessionPage = _page("SessionPage", SessionOut)
OrderPage = _page("OrderPage", OrderOut)
DirectivePage = _page("DirectivePage", DirectiveOut)
EventPage = _page("EventPage", EventOut)
ChannelPage = _page("ChannelPage", ChannelOut)


class StreamOut(Shape):
    results = OrderOut(many=True)
    cursor = rf.CharField()


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}]})
class QtyField(rf.Field[Any, Any, Any, Any]):
    """A JSON number or a decimal string."""


class OpIn(Shape):
    op = rf.ChoiceField(choices=list(OP_FIELDS))
    sku = rf.RegexField(IDENT, required=False)
    qty = QtyField(required=False)
    unit_price_q = rf.IntegerField(required=False, min_value=0, max_value=10**12)
    meta = rf.DictField(required=False)
    line_id = rf.RegexField(IDENT, required=False)
    path = rf.CharField(required=False)
    value = rf.JSONField(required=False)


class SessionCreateIn(Shape):
    channel_code = rf.CharField()
    session_key = rf.RegexField(IDENT, required=False)
    handle_type = rf.CharField(required=False, max_length=64, allow_blank=True)
    handle_ref = rf.CharField(required=False, max_length=128, allow_blank=True)
    data = rf.DictField(required=False)  # type: ignore[assignment]  # a declared field, not Serializer.data
    ops = OpIn(many=True, required=False)
    commit = rf.BooleanField(required=False)
    placed_at = rf.DateTimeField(required=False)
    idempotency_key = rf.CharField(required=False, max_length=255)


class ModifyIn(Shape):
    channel_code = rf.CharField()
    ops = OpIn(many=True)
    rev = rf.IntegerField(required=False, min_value=0)
    idempotency_key = rf.CharField(required=False, max_length=255)


class CommitIn(Shape):
    channel_code = rf.CharField()
    idempotency_key = rf.CharField(required=False, max_length=255)


class ChannelIn(Shape):
    channel_code = rf.CharField()


class ResolveIn(Shape):
    channel_code = rf.CharField()
    issue_id = rf.CharField()
    action_id = rf.CharField()


class TransitionIn(Shape):
    to = rf.CharField(max_length=64)
    reason = rf.CharField(max_length=500, required=False, help_text="Why; kept on the order's event.")


class EmptyIn(Shape):
    pass


def _q(name: str, description: str, **kwargs: Any) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.QUERY, description=description, **kwargs)


PAGE_PARAMS = [
    _q("cursor", "The opaque cursor of a next or previous link."),
    OpenApiParameter("page_size", int, OpenApiParameter.QUERY, description="1 to 100 (larger is clamped)."),
]
CHANNEL_PARAM = _q("channel_code", "The session's channel.", required=True)
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, description="One ETag, a list, or ``*``; stale → 412."
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, description="A matching ETag answers 304."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, description="Or idempotency_key in the body."
)


def _answer_header(name: str, description: str, **kwargs: Any) -> OpenApiParameter:
    """A header of the success answers (200, 201 and 304)."""
    return OpenApiParameter(
        name, str, OpenApiParameter.HEADER, description=description, response=[200, 201, 304], **kwargs
    )


ETAG = _answer_header("ETag", "The resource's strong ETag.")
LOCATION = _answer_header("Location", "The new session's URL.")
REPLAYED = _answer_header("Idempotent-Replayed", "Present on a replayed answer.", enum=["true"])

# One extend_schema per operation; views decorate their methods with these.
health = extend_schema(
    summary="Check the service and its database",
    description="No authentication. 503 ``unavailable`` with ``Retry-After`` when the database is down.",
    responses=HealthOut, auth=[], tags=["health"],
)
channel_list = extend_schema(
    summary="List the channels visible to the caller",
    description="Superusers see every channel, other users the channels granted to them.",
    parameters=PAGE_PARAMS, responses=ChannelPage, tags=["channels"],
)
session_list = extend_schema(
    parameters=[*PAGE_PARAMS, _q("channel_code", "Filter."), _q("state", "open, committed or abandoned."),
                _q("handle_type", "Filter."), _q("handle_ref", "Filter.")],
    summary="List sessions", description="Newest first, cursor-paginated.",
    responses=SessionPage, tags=["sessions"], operation_id="sessions_list",
)
session_create = extend_schema(
    summary="Open a session, or import an order in one call",
    description="201 with the session, ``Location`` and ``ETag``; a ``session_key`` that exists in the channel "
    "is 409 ``session_exists``. ``ops`` are applied as rev 1, all or nothing. With ``\"commit\": true`` the "
    "session is also committed in the same transaction and the answer is the commit's (``order_ref``, ...); "
    "an idempotency key is then required, in the body or the ``Idempotency-Key`` header (400 at "
    "``/idempotency_key`` without one), ``placed_at`` is kept on the order (without ``commit`` it is a 400 "
    "at ``/placed_at``), and any failure leaves nothing. Accepts an idempotency key. Refused for the "
    "channel, the stored state or the clock only: an unknown channel (404), an inactive one (400 at "
    "``/channel_code``), ``data`` over ``MAX_DATA_BYTES`` as JSON (400 at ``/data``), what a modify refuses "
    "for ``ops`` (400 at the op's pointer; a locked channel: 403), what a commit refuses (409 "
    "``commit_blocked``), an ``external_ref`` the channel's orders already have (409 ``external_ref_exists`` "
    "with that order's ``order_ref``), a ``placed_at`` more than ``PLACED_AT_MAX_FUTURE_SECONDS`` ahead of "
    "the server's clock or more than ``PLACED_AT_MAX_AGE_DAYS`` old (400 at ``/placed_at``).",
    request=SessionCreateIn, parameters=[IDEMPOTENCY_KEY, ETAG, LOCATION, REPLAYED],
    responses={201: PolymorphicProxySerializer(
        component_name="SessionCreated", serializers=[SessionOut, CommitOut], resource_type_field_name=None,
    )},
    tags=["sessions"],
)
session_detail = extend_schema(
    summary="Read a session",
    description="With its ``ETag``; a matching ``If-None-Match`` answers 304 with no body.",
    parameters=[CHANNEL_PARAM, IF_NONE_MATCH, ETAG], responses={200: SessionOut, 304: None}, tags=["sessions"]
)
session_modify = extend_schema(
    summary="Apply ops to a session",
    description="Preconditions: ``If-Match`` or the body's ``rev`` (stale: 412 with ``current_rev``; 428 when "
    "the channel requires one and none is given). Accepts an idempotency key. Refused for the channel or the "
    "stored state only: an unknown session or channel (404), a session not open (409), a locked channel "
    "(403), an inactive channel (400 at ``/channel_code``), and 400 at the op's pointer for an unknown "
    "``line_id``, a ``unit_price_q`` missing on external pricing or given on internal pricing, a sku "
    "the pricing backend does not sell, an option the backend does not offer for the line's sku, "
    "outside its group's bounds or with a ``unit_price_q`` (internal pricing) or without one (external), "
    "a repeated option code in a line, what a custom op refuses, more lines than ``MAX_LINES_PER_SESSION``, a total over "
    "2^53 − 1, ``data`` over ``MAX_DATA_BYTES``, or a ``set_data`` path through a value that is not an "
    "object.",
    request=ModifyIn, parameters=[IF_MATCH, IDEMPOTENCY_KEY, ETAG, REPLAYED], responses=SessionOut, tags=["sessions"]
)
session_commit = extend_schema(
    summary="Commit a session into an order",
    description="Exactly once per idempotency key; a committed session answers 409 ``already_committed`` "
    "with its ``order_ref``, blocking issues 409 ``commit_blocked``. Refused for the channel or the stored "
    "state only: an unknown session or channel (404), an inactive channel (400 at ``/channel_code``), a "
    "stale ``If-Match`` (412), a key used for another request (422).",
    request=CommitIn, parameters=[IF_MATCH, IDEMPOTENCY_KEY, REPLAYED], responses={201: CommitOut}, tags=["sessions"]
)
session_abandon = extend_schema(
    summary="Abandon an open session",
    description="Honours ``If-Match`` when given. Refused for the channel or the stored state only: an "
    "unknown session or channel (404), a session not open (409), an inactive channel (400 at "
    "``/channel_code``), a stale ``If-Match`` (412).",
    request=ChannelIn, parameters=[IF_MATCH, ETAG], responses=SessionOut, tags=["sessions"],
)
session_resolve = extend_schema(
    summary="Resolve an issue with one of its actions",
    description="Applies the chosen action of one of the session's issues. Refused for the channel or the "
    "stored state only: an unknown session or channel (404), a session not open (409), an inactive channel "
    "(400 at ``/channel_code``), an unknown issue or action (400 at ``/issue_id`` or ``/action_id``), and "
    "what a modify refuses for the ops of the action.",
    request=ResolveIn, parameters=[ETAG], responses=SessionOut, tags=["sessions"],
)
order_list = extend_schema(
    parameters=[*PAGE_PARAMS, _q("channel_code", "Filter."), _q("status", "Filter."),
                _q("external_ref", "Filter: the order carrying this external reference."),
                OpenApiParameter("number", int, OpenApiParameter.QUERY,
                                 description="Filter: the order with this ticket number in its channel's current "
                                 "business day; with created_after, in any business day since then."),
                OpenApiParameter("created_after", str, OpenApiParameter.QUERY, description="RFC 3339 date-time, with seconds and an offset."),
                OpenApiParameter("created_before", str, OpenApiParameter.QUERY,
                                 description="RFC 3339 date-time, with seconds and an offset.")],
    summary="List orders", description="Newest first, cursor-paginated.",
    responses=OrderPage, tags=["orders"], operation_id="orders_list",
)
order_detail = extend_schema(
    summary="Read an order",
    description="With its items and ``ETag``; a matching ``If-None-Match`` answers 304 with no body.",
    parameters=[IF_NONE_MATCH, ETAG], responses={200: OrderOut, 304: None}, tags=["orders"],
)
order_transition = extend_schema(
    summary="Move an order to another status",
    description="Along the channel's flow; any other move is 409 ``transition_not_allowed``; a stale "
    "``If-Match`` is 412. Enqueues the channel's ``status_directives`` for the new status in the same "
    "transaction; ``reason`` (at most 500 characters) is kept on the order's event.",
    request=TransitionIn, parameters=[IF_MATCH, ETAG], responses=OrderOut, tags=["orders"],
)
order_events = extend_schema(
    parameters=PAGE_PARAMS,
    summary="List an order's events",
    description="The order's audit trail (``order.committed``, ``order.status_changed``, ``payment.*``, "
    "``refund.*``...), oldest first, cursor-paginated. An order of a channel the caller cannot see is 404, as "
    "a missing one.",
    responses=EventPage, tags=["orders"], operation_id="orders_events_list",
)
order_stream = extend_schema(
    parameters=[_q("after", "The cursor of the previous answer: opaque, base64url of the positions read in "
                            "each of the caller's channels (the old ``q<number>`` cursors are refused: 400 "
                            "``old_cursor``)."),
                OpenApiParameter("timeout", float, OpenApiParameter.QUERY, description="Seconds to wait."),
                _q("channel_code", "Filter.")],
    summary="Follow committed orders",
    description="Orders committed after the cursor, oldest first in each channel (a page interleaves "
    "channels by their positions), at most 100, and the next cursor; with none the request waits up to "
    "``timeout`` seconds (bounded by ``STREAM_MAX_TIMEOUT_SECONDS``). Without ``after``: the latest 50 "
    "orders and a cursor at the head of every channel the caller sees. A channel the cursor does not name "
    "is read from its first order. An unknown channel in ``channel_code`` answers an empty page.",
    responses=StreamOut, tags=["orders"],
)
directive_list = extend_schema(
    parameters=[*PAGE_PARAMS, _q("status", "queued, running, done or failed."), _q("topic", "Filter.")],
    summary="List directives", description="Operators only (403 otherwise). Newest first, cursor-paginated.",
    responses=DirectivePage, tags=["directives"],
)
directive_metrics = extend_schema(
    summary="Directive metrics",
    description="Operators only (403 otherwise): directives by status, the age of the oldest queued one, how "
                "long the longest-waiting due one has waited, and expired leases (three queries, one of which "
                "counts every row by status: poll it every few seconds, not per request).",
    responses=DirectiveMetricsOut, tags=["directives"],
)
directive_retry = extend_schema(
    summary="Retry a failed directive",
    description="Operators only (403 otherwise): failed goes back to queued with its attempts at 0.",
    request=EmptyIn, responses=DirectiveOut, tags=["directives"],
)

def only_omniman(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Keep the API's own endpoints, without the schema and the catch-all."""
    out = []
    for path, path_regex, method, callback in endpoints:
        cls = getattr(callback, "cls", None)
        if cls is None or not getattr(cls, "omniman_route", False):
            continue
        if cls.__name__ in ("SchemaView", "NotFoundView"):
            continue
        out.append((path, path_regex, method, callback))
    return out


PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; extra members per code (current_rev, order_ref, reasons).",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail", "code"],
                "properties": {
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}

# -- request rules ---------------------------------------------------------------------------
# The request bodies and parameters are written out here rather than derived from the
# serializers above: the document declares every rule on a request's shape that holds
# whatever the channel or the stored state (SPEC, ``GET schema/``), so a request invalid
# by it is never accepted, and one valid by it is refused only for a rule the
# operation's description names, or for a JSON number written with a fraction.


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(pattern: str = NO_NUL, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern, **rules}


def _object(properties: dict[str, Any], required: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def _qty(zero: bool) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "maximum": 1_000_000, "multipleOf": 0.001}
    number["minimum" if zero else "exclusiveMinimum"] = 0
    text = f"^(?:{QTY_TEXT}|{ZERO_TEXT})$" if zero else f"^{QTY_TEXT}$"
    return {"oneOf": [number, _string(text, maxLength=32)],
            "description": "A JSON number or a decimal string, " + ("≥ 0" if zero else "> 0")
            + ", at most 1,000,000, at most 3 decimal places once trailing zeros are dropped."}


JSON_VALUE = {
    "description": "Any JSON value, stored as sent: strings without NUL, numbers within ±(2^53 − 1); "
                   f"the whole body nests at most {MAX_DEPTH} levels (``x-max-depth``).",
    "type": ["object", "array", "string", "number", "boolean", "null"],
    "additionalProperties": _ref("JsonValue"),
    "propertyNames": {"pattern": NO_NUL},
    "items": _ref("JsonValue"),
    "pattern": NO_NUL,
    "minimum": -MAX_SAFE,
    "maximum": MAX_SAFE,
}
JSON_OBJECT = {
    "description": "A JSON object (see JsonValue).",
    "type": "object",
    "additionalProperties": _ref("JsonValue"),
    "propertyNames": {"pattern": NO_NUL},
}
SKU = _string(IDENT, description="1 to 64 characters of ``[A-Za-z0-9._:-]``.")
LINE_ID = _string(IDENT, description="1 to 64 characters of ``[A-Za-z0-9._:-]``.")
PRICE = {"type": "integer", "minimum": 0, "maximum": 10**12,
         "description": "Minor units; required on external pricing, refused on internal pricing."}
CHANNEL_CODE = _string(IDENT, description="A channel code: 1 to 64 characters of ``[A-Za-z0-9._:-]``.")
IDEMPOTENCY = _string(KEY_BODY, description="1 to 255 printable ASCII characters; or the Idempotency-Key header "
                                            "(both given and different: 400).")


def op_schemas() -> dict[str, dict[str, Any]]:
    """One schema per op, by op name."""
    fields: dict[str, dict[str, Any]] = {
        "sku": SKU, "line_id": LINE_ID, "unit_price_q": PRICE, "meta": _ref("JsonObject"),
        "path": _string(PATH, description=f"1 to {MAX_PATH_SEGMENTS} dot-separated segments of ``[A-Za-z0-9_-]``."),
        "value": _ref("JsonValue"),
        "options": OPTIONS,
    }
    out = {}
    for name, (required, optional) in OP_FIELDS.items():
        props: dict[str, Any] = {"op": {"type": "string", "enum": [name]}}
        for field in sorted(required | optional):
            props[field] = _qty(zero=name == "set_qty") if field == "qty" else fields[field]
        out[name] = _object(props, ["op", *sorted(required)])
    for name, op in registry.ops().items():
        out[name] = custom_op_schema(op)
    return out


OPTIONS = {
    "type": "array", "maxItems": MAX_OPTIONS,
    "description": "A line's priced options, codes unique within the line (a rule this document does not "
                   "declare: a repeated code is a 400 at it).",
    "items": _object({
        "code": _string(IDENT, description="1 to 64 characters of ``[A-Za-z0-9._:-]``."),
        "qty": {"type": "integer", "minimum": 1, "maximum": MAX_OPTION_QTY, "description": "Default 1."},
        "unit_price_q": {**PRICE, "description": "Minor units; required on external pricing, refused on "
                                                  "internal pricing."},
    }, ["code"]),
}


def custom_op_field(spec: Any) -> dict[str, Any]:
    """The schema of one field of a custom op, as declared (:class:`omniman.ops.OpField`)."""
    kind = spec.kind
    if kind == "string":
        out = _string(minLength=1, maxLength=spec.max_length)
    elif kind == "integer":
        out = {"type": "integer", "minimum": -MAX_SAFE if spec.minimum is None else spec.minimum,
               "maximum": MAX_SAFE if spec.maximum is None else spec.maximum}
    elif kind == "boolean":
        out = {"type": "boolean"}
    elif kind == "object":
        out = dict(_ref("JsonObject"))
    elif kind in ("line_id", "sku"):
        out = dict(SKU)
    elif kind == "qty":
        out = _qty(zero=False)
    else:  # amount_q
        out = {"type": "integer", "minimum": 0, "maximum": 10**12}
    if spec.description:
        out["description"] = spec.description
    return out


def custom_op_schema(op: CustomOp) -> dict[str, Any]:
    """The schema of a host's custom op: its fields, typed as declared."""
    props: dict[str, Any] = {"op": {"type": "string", "enum": [op.name]}}
    props.update({name: custom_op_field(spec) for name, spec in op.fields.items()})
    out = _object(props, ["op", *(n for n, spec in op.fields.items() if spec.required)])
    if op.description:
        out["description"] = f"A custom op of this host: {op.description}"
    return out


def request_schemas() -> dict[str, dict[str, Any]]:
    """The request bodies, by component name (settings read now: ``MAX_OPS_PER_MODIFY``)."""
    ops = op_schemas()
    schemas = {"Op" + "".join(w.title() for w in re.split(r"[_.:-]", name)): schema for name, schema in ops.items()}
    one_op = {"oneOf": [_ref(name) for name in schemas], "discriminator": {
        "propertyName": "op", "mapping": {op: f"#/components/schemas/{name}" for op, name in zip(ops, schemas, strict=True)},
    }}
    max_data = conf.get("MAX_DATA_BYTES")
    bodies = {
        **schemas,
        "JsonValue": JSON_VALUE,
        "JsonObject": JSON_OBJECT,
        "OpInRequest": one_op,
        "SessionCreateInRequest": {**_object({
            "channel_code": CHANNEL_CODE,
            "session_key": _string(IDENT, description="Made by the server when omitted."),
            "handle_type": _string(maxLength=64),
            "handle_ref": _string(maxLength=128),
            "data": {**_ref("JsonObject"), "x-max-json-bytes": max_data,
                     "description": f"At most {max_data} bytes as compact JSON (``x-max-json-bytes``; over it: "
                                    f"400 ``max_size`` at ``/data``)."},
            "ops": {"type": "array", "items": _ref("OpInRequest"), "minItems": 1,
                    "maxItems": conf.get("MAX_OPS_PER_MODIFY"), "description": "Applied as rev 1."},
            "commit": {"type": "boolean", "description": "Commit in the same call (an idempotency key is "
                                                         "then required, in the body or the header)."},
            "placed_at": {"type": "string", "format": "date-time", "pattern": DATE_TIME,
                          "description": "When the customer placed the order; only with commit: true."},
            "idempotency_key": IDEMPOTENCY,
        }, ["channel_code"]),
            # placed_at only with "commit": true.
            "dependentSchemas": {"placed_at": {"properties": {"commit": {"const": True}}, "required": ["commit"]}},
        },
        "ModifyInRequest": _object({
            "channel_code": CHANNEL_CODE,
            "ops": {"type": "array", "items": _ref("OpInRequest"), "minItems": 1,
                    "maxItems": conf.get("MAX_OPS_PER_MODIFY")},
            "rev": {"type": "integer", "minimum": 0, "maximum": MAX_SAFE,
                    "description": "The rev the client last saw (stale: 412)."},
            "idempotency_key": IDEMPOTENCY,
        }, ["channel_code", "ops"]),
        "CommitInRequest": _object({"channel_code": CHANNEL_CODE, "idempotency_key": IDEMPOTENCY}, ["channel_code"]),
        "ChannelInRequest": _object({"channel_code": CHANNEL_CODE}, ["channel_code"]),
        "ResolveInRequest": _object({
            "channel_code": CHANNEL_CODE, "issue_id": _string(), "action_id": _string(),
        }, ["channel_code", "issue_id", "action_id"]),
        "TransitionInRequest": _object({
            "to": _string(minLength=1, maxLength=64),
            "reason": _string(maxLength=500, description="Why; kept on the order's event."),
        }, ["to"]),
        "EmptyInRequest": _object({}),
    }
    return bodies


# Query and header parameters, by name.
PARAMETERS: dict[str, dict[str, Any]] = {
    "cursor": _string(CURSOR),
    "page_size": {"type": "integer", "minimum": 1},
    "channel_code": _string(IDENT),
    "state": {"type": "string", "enum": ["open", "committed", "abandoned"]},
    "handle_type": _string(maxLength=64),
    "handle_ref": _string(maxLength=128),
    "topic": _string(maxLength=128),
    "created_after": {"type": "string", "format": "date-time", "pattern": DATE_TIME},
    "created_before": {"type": "string", "format": "date-time", "pattern": DATE_TIME},
    "external_ref": _string(maxLength=128),
    "number": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "after": _string(
        STREAM_CURSOR, contentEncoding="base64url", contentMediaType="application/json",
        contentSchema={"type": "object", "propertyNames": {"pattern": IDENT},
                       "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION}},
        description="base64url without padding of a JSON object, channel code → position, as "
                    "``contentSchema`` says (a value that does not decode to one is refused: 400 at ``/after``).",
    ),
    "timeout": {"type": "number", "minimum": 0},
    "Idempotency-Key": _string(KEY_HEADER),
}
# ``status`` filters differ: an order's is free, a directive's one of four.
STATUS = {
    "/orders/": _string(maxLength=64),
    "/directives/": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
}


# OpenAPI links: what a client (or a stateful fuzzer) can do next with an answer.
_KEY = "$response.body#/session_key"
_CODE = "$response.body#/channel_code"
_SESSION_NEXT = {
    "ReadSession": {"operationId": "sessions_retrieve", "parameters": {"session_key": _KEY, "channel_code": _CODE}},
    # With the rev just seen: the modify applies to that state or answers 412.
    "ModifySession": {"operationId": "sessions_modify_create", "parameters": {"session_key": _KEY},
                      "requestBody": {"channel_code": _CODE, "rev": "$response.body#/rev"}},
    "CommitSession": {"operationId": "sessions_commit_create", "parameters": {"session_key": _KEY},
                      "requestBody": {"channel_code": _CODE}},
    "AbandonSession": {"operationId": "sessions_abandon_create", "parameters": {"session_key": _KEY},
                       "requestBody": {"channel_code": _CODE}},
}
_ORDER_NEXT = {
    "ReadOrder": {"operationId": "orders_retrieve", "parameters": {"ref": "$response.body#/order_ref"}},
    "TransitionOrder": {"operationId": "orders_transition_create", "parameters": {"ref": "$response.body#/order_ref"}},
}
LINKS: dict[tuple[str, str], dict[str, Any]] = {
    ("sessions_create", "201"): _SESSION_NEXT,
    ("sessions_modify_create", "200"): _SESSION_NEXT,
    ("sessions_retrieve", "200"): _SESSION_NEXT,
    ("sessions_commit_create", "201"): _ORDER_NEXT,
    ("orders_transition_create", "200"): {
        "TransitionOrder": {"operationId": "orders_transition_create", "parameters": {"ref": "$response.body#/ref"}},
        "ReadOrder": {"operationId": "orders_retrieve", "parameters": {"ref": "$response.body#/ref"}},
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def body_limit_responses() -> dict[str, dict[str, Any]]:
    """The answers to a body over the limits every request body has, whatever the
    operation (settings read now: ``MAX_BODY_BYTES``)."""
    return {
        "400": _problem(
            f"``malformed_request`` for a body that is not a JSON object of plain JSON, "
            f"including one whose objects and arrays nest deeper than {MAX_DEPTH} levels (the body "
            f"itself is level 1; ``x-max-depth`` on the request body says so); ``validation_error`` for a "
            f"field, with an ``errors`` list of pointers."),
        "413": _problem(
            f"``payload_too_large``: the body is over ``MAX_BODY_BYTES`` ({conf.get('MAX_BODY_BYTES')} bytes "
            f"here); it is read and dropped first."),
    }


def postprocess(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every error as a problem+json ``default`` response, the exact rules of every
    request body and parameter, and the links between answers."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    schemas.update(request_schemas())
    _extend(result, schemas)
    # The parser's depth limit holds for every request body, extensions' included.
    for name, schema in schemas.items():
        if name.endswith("InRequest") and name != "OpInRequest":
            schema["x-max-depth"] = MAX_DEPTH
    for path, item in result.get("paths", {}).items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    continue
                name = parameter["name"]
                if name == "status":
                    parameter["schema"] = next(v for k, v in STATUS.items() if path.endswith(k))
                elif name in PARAMETERS:
                    parameter["schema"] = PARAMETERS[name]
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.update(body_limit_responses())
            responses["default"] = {
                "description": "An error, as application/problem+json (RFC 9457).",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            for status, response in responses.items():
                links = LINKS.get((operation.get("operationId", ""), status))
                if links:
                    response["links"] = links
    return result


def _extend(result: dict[str, Any], schemas: dict[str, Any]) -> None:
    """What order extensions add (:mod:`omniman.extensions`): fields of an order, filters
    of ``orders/``, and the request bodies of their routes (``REQUEST_SCHEMAS`` of their
    ``api_urls`` module)."""
    for ext in extensions.extensions():
        order = schemas.get("OrderOut")
        if order is not None and ext.field_schemas:
            order["properties"].update({k: dict(v) for k, v in ext.field_schemas.items()})
            order["required"] = [*order.get("required", []), *ext.field_schemas]
        for path, item in result.get("paths", {}).items():
            listing = item.get("get") if path.endswith("/orders/") else None
            if listing is None:
                continue
            for name, order_filter in ext.filters.items():
                listing.setdefault("parameters", []).append({
                    "in": "query", "name": name, "schema": dict(order_filter.schema),
                    "description": order_filter.description,
                })
        if ext.api_urls:
            schemas.update(getattr(import_module(ext.api_urls), "REQUEST_SCHEMAS", {}))


SETTINGS: dict[str, Any] = {
    "TITLE": "omniman",
    "DESCRIPTION": "Sessions of ops, exactly-once commits, orders and directives.",
    "VERSION": __version__,
    "PREPROCESSING_HOOKS": ["omniman_api.schema.only_omniman"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "omniman_api.schema.postprocess",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "OAS_VERSION": "3.1.0",
}


def document(urlconf: str | None = "omniman_api.urls") -> dict[str, Any]:
    """The OpenAPI document that ``schema/`` serves, without a request.

    With the default ``urlconf`` the paths are relative to where the host mounts
    ``omniman_api.urls`` (``/sessions/``); ``urlconf=None`` uses the host's
    ``ROOT_URLCONF`` and so its prefix (``/api/sessions/``). The docs' HTTP reference
    is generated from this (``docs/_ext/openapi_reference.py``)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings

    with patched_settings(SETTINGS):
        # drf-spectacular ships py.typed but leaves its generator unannotated.
        generator = SchemaGenerator(urlconf=urlconf)  # type: ignore[no-untyped-call]
        schema: dict[str, Any] = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
        return schema


class SchemaView(SpectacularAPIView):
    content_negotiation_class = SchemaNegotiation
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    custom_settings = SETTINGS

    def get_authenticators(self) -> list[Any]:
        return []

    def get_throttles(self) -> list[Any]:
        return []
