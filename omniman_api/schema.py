"""The OpenAPI 3 document (drf-spectacular), served at ``schema/`` without auth.

The serializers here describe shapes for the document only: views render plain dicts
(:mod:`omniman_api.serializers`). Every operation also answers problem+json for its
errors (the ``default`` response) and documents its ``ETag``/``Location``/
``Idempotent-Replayed`` headers; :func:`postprocess` adds those."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from drf_spectacular.utils import extend_schema as _extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers as rf
from rest_framework.permissions import AllowAny

from omniman import __version__
from omniman.ops import OP_FIELDS
from omniman_api.renderers import SchemaNegotiation

IDENT = r"^[A-Za-z0-9._:-]{1,64}$"


def extend_schema(**kwargs: Any) -> Any:
    """drf-spectacular's ``extend_schema`` for a view method, based on its own
    ``AutoSchema`` whatever the host's ``DEFAULT_SCHEMA_CLASS``."""
    decorate = _extend_schema(**kwargs)

    def apply(method: Any) -> Any:
        method.schema = AutoSchema
        return decorate(method)

    return apply


class Line(rf.Serializer):
    line_id = rf.CharField()
    sku = rf.CharField()
    qty = rf.CharField(help_text="A canonical decimal string: \"2\", \"0.25\".")
    unit_price_q = rf.IntegerField()
    line_total_q = rf.IntegerField()
    meta = rf.DictField()


class Check(rf.Serializer):
    rev = rf.IntegerField(allow_null=True)
    ok = rf.BooleanField()
    detail = rf.DictField()
    at = rf.CharField(allow_null=True)


class IssueAction(rf.Serializer):
    id = rf.CharField()
    label = rf.CharField()


class Issue(rf.Serializer):
    id = rf.CharField()
    code = rf.CharField()
    blocking = rf.BooleanField()
    message = rf.CharField(allow_blank=True)
    actions = IssueAction(many=True)


class SessionOut(rf.Serializer):
    session_key = rf.CharField()
    channel_code = rf.CharField()
    state = rf.ChoiceField(choices=["open", "committed", "abandoned"])
    rev = rf.IntegerField()
    items = Line(many=True)
    data = rf.DictField()
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


class OrderOut(rf.Serializer):
    ref = rf.CharField()
    channel_code = rf.CharField()
    session_key = rf.CharField()
    status = rf.CharField()
    items = Line(many=True)
    data = rf.DictField()
    pricing = rf.DictField()
    total_q = rf.IntegerField()
    currency = rf.CharField()
    external_ref = rf.CharField(allow_blank=True)
    created_at = rf.DateTimeField()
    updated_at = rf.DateTimeField()


class CommitOut(rf.Serializer):
    order_ref = rf.CharField()
    status = rf.CharField()
    total_q = rf.IntegerField()
    currency = rf.CharField()
    items_count = rf.IntegerField()
    session_key = rf.CharField()
    channel_code = rf.CharField()


class DirectiveOut(rf.Serializer):
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


class DirectiveMetricsOut(rf.Serializer):
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


class ChannelOut(rf.Serializer):
    code = rf.CharField()
    name = rf.CharField()
    currency = rf.CharField()
    is_active = rf.BooleanField()
    pricing_policy = rf.ChoiceField(choices=["internal", "external"])
    edit_policy = rf.ChoiceField(choices=["open", "locked"])
    require_if_match = rf.BooleanField()


class HealthOut(rf.Serializer):
    status = rf.CharField()
    version = rf.CharField()
    database = rf.CharField()


def _page(name: str, child: type[rf.Serializer]) -> type[rf.Serializer]:
    return type(name, (rf.Serializer,), {
        "next": rf.URLField(allow_null=True),
        "previous": rf.URLField(allow_null=True),
        "results": child(many=True),
        "__module__": __name__,
    })


SessionPage = _page("SessionPage", SessionOut)
OrderPage = _page("OrderPage", OrderOut)
DirectivePage = _page("DirectivePage", DirectiveOut)
ChannelPage = _page("ChannelPage", ChannelOut)


class StreamOut(rf.Serializer):
    results = OrderOut(many=True)
    cursor = rf.CharField()


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}]})
class QtyField(rf.Field):
    """A JSON number or a decimal string."""


class OpIn(rf.Serializer):
    op = rf.ChoiceField(choices=list(OP_FIELDS))
    sku = rf.RegexField(IDENT, required=False)
    qty = QtyField(required=False)
    unit_price_q = rf.IntegerField(required=False, min_value=0, max_value=10**12)
    meta = rf.DictField(required=False)
    line_id = rf.RegexField(IDENT, required=False)
    path = rf.CharField(required=False)
    value = rf.JSONField(required=False)


class SessionCreateIn(rf.Serializer):
    channel_code = rf.CharField()
    session_key = rf.RegexField(IDENT, required=False)
    handle_type = rf.CharField(required=False, max_length=64, allow_blank=True)
    handle_ref = rf.CharField(required=False, max_length=128, allow_blank=True)
    data = rf.DictField(required=False)
    idempotency_key = rf.CharField(required=False, max_length=255)


class ModifyIn(rf.Serializer):
    channel_code = rf.CharField()
    ops = OpIn(many=True)
    rev = rf.IntegerField(required=False, min_value=0)
    idempotency_key = rf.CharField(required=False, max_length=255)


class CommitIn(rf.Serializer):
    channel_code = rf.CharField()
    idempotency_key = rf.CharField(required=False, max_length=255)


class ChannelIn(rf.Serializer):
    channel_code = rf.CharField()


class ResolveIn(rf.Serializer):
    channel_code = rf.CharField()
    issue_id = rf.CharField()
    action_id = rf.CharField()


class TransitionIn(rf.Serializer):
    to = rf.CharField(max_length=64)


class EmptyIn(rf.Serializer):
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
    summary="Open a session",
    description="201 with ``Location`` and ``ETag``; a ``session_key`` that exists in the channel is 409 "
    "``session_exists``. Accepts an idempotency key.",
    request=SessionCreateIn, parameters=[IDEMPOTENCY_KEY], responses={201: SessionOut}, tags=["sessions"]
)
session_detail = extend_schema(
    summary="Read a session",
    description="With its ``ETag``; a matching ``If-None-Match`` answers 304 with no body.",
    parameters=[CHANNEL_PARAM, IF_NONE_MATCH], responses={200: SessionOut, 304: None}, tags=["sessions"]
)
session_modify = extend_schema(
    summary="Apply ops to a session",
    description="Preconditions: ``If-Match`` or the body's ``rev`` (stale: 412 with ``current_rev``; 428 when "
    "the channel requires one and none is given). Accepts an idempotency key.",
    request=ModifyIn, parameters=[IF_MATCH, IDEMPOTENCY_KEY], responses=SessionOut, tags=["sessions"]
)
session_commit = extend_schema(
    summary="Commit a session into an order",
    description="Exactly once per idempotency key; a committed session answers 409 ``already_committed`` "
    "with its ``order_ref``, blocking issues 409 ``commit_blocked``.",
    request=CommitIn, parameters=[IF_MATCH, IDEMPOTENCY_KEY], responses={201: CommitOut}, tags=["sessions"]
)
session_abandon = extend_schema(
    summary="Abandon an open session", description="Honours ``If-Match`` when given.",
    request=ChannelIn, parameters=[IF_MATCH], responses=SessionOut, tags=["sessions"],
)
session_resolve = extend_schema(
    summary="Resolve an issue with one of its actions",
    description="Applies the chosen action of one of the session's issues.",
    request=ResolveIn, responses=SessionOut, tags=["sessions"],
)
order_list = extend_schema(
    parameters=[*PAGE_PARAMS, _q("channel_code", "Filter."), _q("status", "Filter."),
                OpenApiParameter("created_after", str, OpenApiParameter.QUERY, description="ISO 8601."),
                OpenApiParameter("created_before", str, OpenApiParameter.QUERY, description="ISO 8601.")],
    summary="List orders", description="Newest first, cursor-paginated.",
    responses=OrderPage, tags=["orders"], operation_id="orders_list",
)
order_detail = extend_schema(
    summary="Read an order",
    description="With its items and ``ETag``; a matching ``If-None-Match`` answers 304 with no body.",
    parameters=[IF_NONE_MATCH], responses={200: OrderOut, 304: None}, tags=["orders"],
)
order_transition = extend_schema(
    summary="Move an order to another status",
    description="Along the channel's flow; any other move is 409 ``transition_not_allowed``.",
    request=TransitionIn, parameters=[IF_MATCH], responses=OrderOut, tags=["orders"],
)
order_stream = extend_schema(
    parameters=[_q("after", "The cursor of the previous answer."),
                OpenApiParameter("timeout", float, OpenApiParameter.QUERY, description="Seconds to wait."),
                _q("channel_code", "Filter.")],
    summary="Follow committed orders",
    description="Orders committed after the cursor, oldest first, at most 100, and the next cursor; with none "
    "the request waits up to ``timeout`` seconds (bounded by ``STREAM_MAX_TIMEOUT_SECONDS``).",
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

HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "The resource's strong ETag."},
    "Location": {"schema": {"type": "string"}, "description": "The new session's URL."},
    "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]},
                            "description": "Present on a replayed answer."},
}


def only_omniman(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Keep the API's own endpoints, without the schema and the catch-all."""
    out = []
    for path, path_regex, method, callback in endpoints:
        cls = getattr(callback, "cls", None)
        if cls is None or not cls.__module__.startswith("omniman_api"):
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

# (path suffix, method) -> headers of the success responses
RESPONSE_HEADERS = {
    ("/sessions/", "post"): ["ETag", "Location", "Idempotent-Replayed"],
    ("/sessions/{session_key}/", "get"): ["ETag"],
    ("/modify/", "post"): ["ETag", "Idempotent-Replayed"],
    ("/commit/", "post"): ["Idempotent-Replayed"],
    ("/abandon/", "post"): ["ETag"],
    ("/resolve/", "post"): ["ETag"],
    ("/orders/{ref}/", "get"): ["ETag"],
    ("/transition/", "post"): ["ETag"],
}


def postprocess(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every error as a problem+json ``default`` response, and the response headers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses["default"] = {
                "description": "An error, as application/problem+json (RFC 9457).",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            names = next((v for (suffix, m), v in RESPONSE_HEADERS.items()
                          if path.endswith(suffix) and m == method), [])
            for status, response in responses.items():
                if names and status in ("200", "201", "304"):
                    response["headers"] = {name: HEADERS[name] for name in names}
    return result


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
        return SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)


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
