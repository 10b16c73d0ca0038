"""Thin views: read the request, call one kernel service, render the answer.

Errors are raised, never built here: :func:`omniman_api.errors.exception_handler`
turns each into problem+json."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, prefetch_related_objects
from django.utils.dateparse import parse_datetime
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions as drf
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import ForcedAuthentication, Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

import omniman
from omniman import conf, extensions
from omniman.exceptions import FieldError, NotFound, ValidationError
from omniman.models import Channel, Directive, Order, OrderEvent, OrderItem, Session
from omniman.services import (
    GrantedChannel,
    abandon_session,
    commit_session,
    create_session,
    get_session,
    import_order,
    modify_session,
    resolve_issue,
    transition_order,
)
from omniman.services.directive_ops import directive_metrics, retry_directive
from omniman.services.idempotency import IdempotentRequest, Replay
from omniman.services.numbers import in_current_business_day
from omniman_api import schema as docs
from omniman_api import serializers as s
from omniman_api.conditional import etag, if_match, none_match
from omniman_api.errors import exception_handler
from omniman_api.idempotency import (
    REPLAYED_HEADER,
    outcome_response,
    request_fingerprint,
    request_key,
)
from omniman_api.pagination import (
    STREAM_CURSOR_MAX,
    decode_stream_cursor,
    encode_stream_cursor,
    paginate,
)
from omniman_api.parsers import StrictJSONParser
from omniman_api.permissions import Access, IsOperator, check_code
from omniman_api.renderers import JSONOnlyNegotiation, ORJSONRenderer, dumps

logger = logging.getLogger(__name__)

STREAM_PAGE = 100
STREAM_LATEST = 50
STREAM_POLL_SECONDS = 0.2
# A JSON number, as ``timeout`` is declared (float() alone would take "inf", "1_0", " 1").
NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
#: The 401 challenge when no authentication class names a scheme (cookie sessions
#: have no registered one).
SESSION_CHALLENGE = 'Session realm="api"'
MAX_REV = 2**53 - 1


class OmnimanView(APIView):
    """The base of every view: strict JSON in, orjson out, problem+json errors,
    authentication and throttling from ``REST_FRAMEWORK`` (read per request)."""

    parser_classes = [StrictJSONParser]
    renderer_classes = [ORJSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    permission_classes = [IsAuthenticated]
    schema = AutoSchema()
    #: In the OpenAPI document (see :func:`omniman_api.schema.only_omniman`).
    omniman_route = True

    def get_authenticators(self) -> list[BaseAuthentication]:
        # DRF has imported these dotted paths; its stubs type the setting as the strings.
        classes: list[type[BaseAuthentication]] = api_settings.DEFAULT_AUTHENTICATION_CLASSES  # type: ignore[assignment]
        return [auth() for auth in classes]

    # DRF's own returns None as well when there is no authenticator (its stub says str).
    def get_authenticate_header(self, request: Request) -> str | None:  # type: ignore[override]
        """The challenge of a 401. DRF asks the first authentication class only and
        answers 403 when it has none (``SessionAuthentication``, first in DRF's
        defaults): here the first class that names a scheme gives it, and a 401
        without one says ``Session``, so no credentials is always 401."""
        if not request.authenticators:
            return None
        for authenticator in request.authenticators:
            if isinstance(authenticator, ForcedAuthentication):
                continue  # a test client's force_authenticate(): it names no scheme
            header = authenticator.authenticate_header(request)
            if header:
                return str(header)
        return SESSION_CHALLENGE

    def get_throttles(self) -> list[BaseThrottle]:
        classes: list[type[BaseThrottle]] = api_settings.DEFAULT_THROTTLE_CLASSES  # type: ignore[assignment]  # (as above)
        return [throttle() for throttle in classes]

    def get_exception_handler(self) -> Any:
        return exception_handler

    @property
    def access(self) -> Access:
        return Access.of(self.request)

    def body(self) -> dict[str, Any]:
        """The parsed JSON object; a body without a content type is 415."""
        request = self.request
        if not request.content_type and _has_body(request):
            raise drf.UnsupportedMediaType("", detail="Send the body as application/json.")
        data = request.data
        if not isinstance(data, dict):  # pragma: no cover - the parser only yields objects
            raise ValidationError(FieldError("/", "the body must be an object.", "invalid_type"))
        return data

    def actor(self) -> str:
        user = self.request.user
        return str(user.get_username()) if user and user.is_authenticated else ""


def _has_body(request: Request) -> bool:
    meta = request.META
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) > 0 or "HTTP_TRANSFER_ENCODING" in meta
    except ValueError:
        return True


def _query(request: Request, name: str, *, max_length: int = 128, blank: bool = True) -> str | None:
    """A parameter from the query string; a NUL or an over-long value is a validation
    error. With ``blank`` an empty value means none (a free-text filter); without it, an
    empty value is refused, as the OpenAPI document's pattern says."""
    value = request.query_params.get(name)
    if value is None or (value == "" and blank):
        return None
    if "\x00" in value or len(value) > max_length or (value == "" and not blank):
        raise ValidationError(FieldError(f"/{name}", f"{name} is not valid.", "invalid"))
    return value


def _query_code(request: Request) -> str | None:
    code = _query(request, "channel_code", max_length=64, blank=False)
    return None if code is None else check_code(code)


# What ``created_after``/``created_before`` accept, as the OpenAPI document declares it
# (``format: date-time`` and this pattern): an RFC 3339 date-time, seconds and offset required.
DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def _query_datetime(request: Request, name: str) -> datetime | None:
    value = _query(request, name, blank=False)
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) if DATETIME_RE.match(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError(FieldError(f"/{name}", f"{name} must be an ISO 8601 date-time.", "invalid"))
    # In UTC for the database (PostgreSQL refuses offsets beyond ±15:59); a moment
    # before year 1 or after 9999 in UTC is the earliest or the latest one.
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return (datetime.min if parsed.year < 2 else datetime.max).replace(tzinfo=UTC)


#: ``number``: a ticket number as the OpenAPI document declares it (1 to the column's maximum).
TICKET_NUMBER_RE = re.compile(r"[1-9][0-9]{0,9}\Z")
MAX_TICKET_NUMBER = 2**31 - 1


def _query_number(request: Request) -> int | None:
    value = _query(request, "number", blank=False)
    if value is None:
        return None
    if not TICKET_NUMBER_RE.match(value) or not 1 <= int(value) <= MAX_TICKET_NUMBER:
        raise ValidationError(
            FieldError("/number", f"number must be an integer from 1 to {MAX_TICKET_NUMBER}.", "invalid")
        )
    return int(value)


def _body_datetime(body: dict[str, Any], name: str) -> datetime | None:
    """A date-time of the body, as the OpenAPI document declares it (RFC 3339, seconds
    and offset required); absent is None."""
    value = body.get(name)
    if value is None and name not in body:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) and DATETIME_RE.match(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError(FieldError(f"/{name}", f"{name} must be an RFC 3339 date-time with an offset.",
                                         "invalid"))
    return parsed


def _as_json(value: Any) -> Any:
    """``value`` as the client reads it (dates in the renderer's format), for the store."""
    return orjson.loads(dumps(value))


def _session_response(session: Session, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(s.session_json(session), status=status, headers=headers)
    response["ETag"] = etag(session)
    return response


def _order_response(order: Order, items: Any = None) -> Response:
    response = Response(s.order_json(order, items))
    response["ETag"] = etag(order)
    return response


# -- health and the catch-all ---------------------------------------------------------------


class HealthView(OmnimanView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get_authenticators(self) -> list[Any]:
        return []

    def get_throttles(self) -> list[Any]:
        return []

    @docs.health
    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response({"status": "ok", "version": omniman.__version__, "database": "ok"})


class NotFoundView(OmnimanView):
    """Any unknown path under the API's prefix: 404 problem+json, whatever the method."""

    permission_classes = [AllowAny]

    def get_authenticators(self) -> list[Any]:
        return []

    def get_throttles(self) -> list[Any]:
        return []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise NotFound("No such resource.")


# -- channels --------------------------------------------------------------------------------


class ChannelListView(OmnimanView):
    @docs.channel_list
    def get(self, request: Request) -> Response:
        from omniman.models import Channel

        qs = self.access.scope(Channel.objects.all(), field="")
        page = paginate(request, qs)
        return Response(page.body([s.channel_json(c) for c in page.rows]))


# -- sessions --------------------------------------------------------------------------------


class SessionListView(OmnimanView):
    @docs.session_list
    def get(self, request: Request) -> Response:
        qs = self.access.scope(Session.objects.select_related("channel").with_items())
        code = _query_code(request)
        if code is not None:
            qs = qs.filter(channel__code=code)
        state = _query(request, "state", max_length=16, blank=False)
        if state is not None:
            if state not in Session.State.values:
                raise ValidationError(FieldError(
                    "/state", f"state must be one of {', '.join(Session.State.values)}.", "invalid_choice"
                ))
            qs = qs.filter(state=state)
        for name, length in (("handle_type", 64), ("handle_ref", 128)):
            value = _query(request, name, max_length=length)
            if value is not None:
                qs = qs.filter(**{name: value})
        page = paginate(request, qs)
        return Response(page.body([s.session_json(x) for x in page.rows]))

    @docs.session_create
    def post(self, request: Request) -> Response:
        body = self.body()
        s.check_fields(
            body,
            required=["channel_code"],
            optional=["session_key", "handle_type", "handle_ref", "data", "idempotency_key", "ops", "commit",
                      "placed_at"],
        )
        commit = body.get("commit", False)
        if not isinstance(commit, bool):
            raise ValidationError(FieldError("/commit", "commit must be true or false.", "invalid_type"))
        if "placed_at" in body and not commit:
            raise ValidationError(FieldError("/placed_at", "placed_at is kept on the order: it needs commit: true.",
                                             "not_allowed"))
        channel = self.access.channel(body["channel_code"], active=True)
        kwargs = {
            "channel": channel,
            "session_key": body.get("session_key"),
            "handle_type": body.get("handle_type", ""),
            "handle_ref": body.get("handle_ref", ""),
            "data": body.get("data"),
            "ops": body.get("ops"),
            "actor": self.actor(),
        }
        if kwargs["session_key"] is None and "session_key" in body:
            raise ValidationError(FieldError("/session_key", "session_key must be a string.", "invalid_type"))
        if kwargs["ops"] is None and "ops" in body:
            raise ValidationError(FieldError("/ops", "ops must be a list of ops.", "invalid_type"))
        key = request_key(request, body)
        if commit:
            result = import_order(
                **kwargs, idempotency_key=key, placed_at=_body_datetime(body, "placed_at"),
                fingerprint=request_fingerprint(request, body) if key is not None else None,
            )
            response = Response(result.body, status=201)
            if result.replayed:
                response[REPLAYED_HEADER] = "true"
            return response
        if key is None:
            return self._created(create_session(**kwargs))
        return outcome_response(create_session(
            **kwargs, idempotency=IdempotentRequest(key, request_fingerprint(request, body), self._answer)
        ))

    def _answer(self, session: Session) -> Replay:
        """The answer recorded with the key, and given now: what a replay gives back."""
        response = self._created(session)
        return Replay(201, _as_json(response.data), {"ETag": response["ETag"], "Location": response["Location"]})

    def _created(self, session: Session) -> Response:
        location = self.request.build_absolute_uri(
            f"{self.request.path.rstrip('/')}/{session.session_key}/?channel_code={session.channel.code}"
        )
        return _session_response(session, 201, {"Location": location})


class SessionView(OmnimanView):
    """Base for the views under ``sessions/{key}/``: the channel comes from the body
    (or, for GET, the query string) and must be one the caller may use. The grant is
    checked by the query that finds the session: no statement of its own."""

    def session_channel(self, code: Any, *, active: bool = True) -> GrantedChannel:
        return self.access.granted(code, active=active)


class SessionDetailView(SessionView):
    @docs.session_detail
    def get(self, request: Request, session_key: str) -> Response:
        channel = self.session_channel(request.query_params.get("channel_code"), active=False)
        # With If-None-Match, read the row alone first: a 304 needs no lines (a 200
        # then reads them with one more query).
        session = get_session(channel, session_key, lines="HTTP_IF_NONE_MATCH" not in request.META)
        tag = etag(session)
        if none_match(request, tag):
            return Response(status=304, headers={"ETag": tag})
        return _session_response(session)


class SessionModifyView(SessionView):
    @docs.session_modify
    def post(self, request: Request, session_key: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["channel_code", "ops"], optional=["rev", "idempotency_key"])
        channel = self.session_channel(body["channel_code"])
        rev = body.get("rev")
        if rev is not None and (isinstance(rev, bool) or not isinstance(rev, int) or not 0 <= rev <= MAX_REV):
            raise ValidationError(FieldError("/rev", f"rev must be an integer from 0 to {MAX_REV}.", "invalid_type"))
        kwargs = {
            "channel": channel,
            "session_key": session_key,
            "ops": body["ops"],
            "expected_rev": rev,
            "expected_version": if_match(request),
            "actor": self.actor(),
            "load_items": True,  # the answer shows every line: bring them with the lock
        }
        key = request_key(request, body)
        if key is None:
            return _session_response(modify_session(**kwargs))
        return outcome_response(modify_session(
            **kwargs, idempotency=IdempotentRequest(key, request_fingerprint(request, body), _modified_answer)
        ))


def _modified_answer(session: Session) -> Replay:
    """The answer recorded with the key, and given now: what a replay gives back."""
    response = _session_response(session)
    return Replay(200, _as_json(response.data), {"ETag": response["ETag"]})


class SessionCommitView(SessionView):
    @docs.session_commit
    def post(self, request: Request, session_key: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["channel_code"], optional=["idempotency_key"])
        channel = self.session_channel(body["channel_code"])
        key = request_key(request, body)
        result = commit_session(
            channel=channel,
            session_key=session_key,
            idempotency_key=key,
            fingerprint=request_fingerprint(request, body) if key is not None else None,
            expected_version=if_match(request),
            actor=self.actor(),
        )
        response = Response(result.body, status=201)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class SessionAbandonView(SessionView):
    @docs.session_abandon
    def post(self, request: Request, session_key: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["channel_code"])
        channel = self.session_channel(body["channel_code"])
        session = abandon_session(
            channel=channel, session_key=session_key, expected_version=if_match(request), actor=self.actor()
        )
        return _session_response(session)


class SessionResolveView(SessionView):
    @docs.session_resolve
    def post(self, request: Request, session_key: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["channel_code", "issue_id", "action_id"])
        channel = self.session_channel(body["channel_code"])
        session = resolve_issue(
            channel=channel,
            session_key=session_key,
            issue_id=body["issue_id"],
            action_id=body["action_id"],
            expected_version=if_match(request),
            actor=self.actor(),
        )
        return _session_response(session)


# -- orders ----------------------------------------------------------------------------------


def _orders() -> QuerySet[Order]:
    """Orders with their channel and what order extensions read beside them (joins)."""
    return Order.objects.select_related("channel", *extensions.order_related())


def _items_prefetch() -> Prefetch[str, QuerySet[OrderItem], str]:
    return Prefetch("items", queryset=OrderItem.objects.order_by("position"))


class OrderListView(OmnimanView):
    @docs.order_list
    def get(self, request: Request) -> Response:
        qs = self.access.scope(_orders())
        code = _query_code(request)
        if code is not None:
            qs = qs.filter(channel__code=code)
        status = _query(request, "status", max_length=64)
        if status is not None:
            qs = qs.filter(status=status)
        after = _query_datetime(request, "created_after")
        if after is not None:
            qs = qs.filter(created_at__gt=after)
        number = _query_number(request)
        if number is not None:
            # Ticket numbers start again every business day: today's, unless the
            # caller says from when with created_after.
            qs = qs.filter(number=number)
            if after is None:
                qs = in_current_business_day(qs)
        before = _query_datetime(request, "created_before")
        if before is not None:
            qs = qs.filter(created_at__lt=before)
        external_ref = _query(request, "external_ref", max_length=128)
        if external_ref is not None:
            qs = qs.filter(external_ref=external_ref)
        for name, order_filter in extensions.order_filters().items():
            value = _query(request, name, blank=False)
            if value is not None:
                qs = order_filter.apply(qs, value)
        page = paginate(request, qs.prefetch_related(_items_prefetch()))
        return Response(page.body([s.order_json(o) for o in page.rows]))


def _visible_order(view: OmnimanView, ref: str) -> Order:
    order = view.access.scope(_orders()).filter(ref=ref).first()
    if order is None:
        raise NotFound("No such order.")
    return order


class OrderDetailView(OmnimanView):
    @docs.order_detail
    def get(self, request: Request, ref: str) -> Response:
        order = _visible_order(self, ref)
        tag = etag(order)
        if none_match(request, tag):
            return Response(status=304, headers={"ETag": tag})
        return _order_response(order, order.items.order_by("position"))


class OrderTransitionView(OmnimanView):
    @docs.order_transition
    def post(self, request: Request, ref: str) -> Response:
        body = self.body()
        s.check_fields(body, required=["to"], optional=["reason"])
        if "reason" in body and not isinstance(body["reason"], str):  # null included: the kernel's "none given"
            raise ValidationError(FieldError("/reason", "reason must be a string.", "invalid_type"))
        # The lock's query checks the grant: an order of another channel is not found.
        order = transition_order(
            ref=ref, to=body["to"], channel=self.access.any_granted(), expected_version=if_match(request, Order),
            actor=self.actor(), reason=body.get("reason"),
        )
        return _order_response(order, order.items.order_by("position"))


def _position(order: Order) -> int:
    """An order's stream position (the stream reads only orders that have one)."""
    assert order.channel_seq is not None
    return order.channel_seq


class OrderEventsView(OmnimanView):
    """An order's audit trail, oldest first (the order as its detail view finds it)."""

    @docs.order_events
    def get(self, request: Request, ref: str) -> Response:
        order = self.access.scope(Order.objects.only("pk")).filter(ref=ref).first()
        if order is None:
            raise NotFound("No such order.")
        page = paginate(request, OrderEvent.objects.filter(order_id=order.pk), oldest_first=True)
        return Response(page.body([s.event_json(e) for e in page.rows]))


class OrderStreamView(OmnimanView):
    """Orders in commit order after an opaque cursor; waits up to ``timeout`` seconds
    for the first one.

    Positions are per channel (``Order.channel_seq``: 1, 2, 3...), handed out by the
    kernel in each channel's commit order, so commits on different channels never wait
    on each other. The cursor maps each channel code the caller has read to its last
    position. A read first asks the head of each of the caller's channels (one query,
    an index lookup per channel: also what a waiting request polls), then takes the
    next orders of the channels that have any, each channel's in its order (by
    position, then channel: one query, an index range per channel), so it never leaves
    out an order that committed late, on one channel or several."""

    @docs.order_stream
    def get(self, request: Request) -> Response:
        raw_after = _query(request, "after", max_length=STREAM_CURSOR_MAX, blank=False)
        timeout = self._timeout(request)
        code = _query_code(request)
        positions = decode_stream_cursor(raw_after) if raw_after is not None else None
        deadline = time.monotonic() + timeout
        while True:
            heads = self._heads(code)
            if positions is None:
                return self._latest(heads)
            behind = [(pk, positions.get(c, 0)) for pk, (c, head) in heads.items() if head > positions.get(c, 0)]
            remaining = deadline - time.monotonic()
            if behind or remaining <= 0:
                break
            time.sleep(min(STREAM_POLL_SECONDS, remaining))
        rows: list[Order] = []
        if behind:
            since = Q(*(Q(channel_id=pk, channel_seq__gt=seq) for pk, seq in behind), _connector=Q.OR)
            rows = list(_orders().filter(since).order_by("channel_seq", "channel_id")[:STREAM_PAGE])
            prefetch_related_objects(rows, _items_prefetch())
        for order in rows:
            positions[order.channel.code] = _position(order)
        return Response({"results": [s.order_json(o) for o in rows], "cursor": encode_stream_cursor(positions)})

    def _heads(self, code: str | None) -> dict[int, tuple[str, int]]:
        """Channel id → (code, last position) of the caller's channels (only ``code``'s
        when given), 0 for a channel without orders: one query."""
        channels = self.access.scope(Channel.objects.all(), field="")
        if code is not None:
            channels = channels.filter(code=code)
        of_channel = Order.objects.filter(channel_id=OuterRef("pk"), channel_seq__isnull=False)
        last = of_channel.order_by("-channel_seq").values("channel_seq")[:1]
        rows = channels.annotate(head=Subquery(last)).values_list("pk", "code", "head")
        return {pk: (c, head or 0) for pk, c, head in rows}

    def _latest(self, heads: dict[int, tuple[str, int]]) -> Response:
        """The latest orders up to the heads just read, and a cursor at those heads: an
        order committed in between comes on the next read."""
        heads = {pk: (c, head) for pk, (c, head) in heads.items() if head}
        rows: list[Order] = []
        if heads:
            qs = _orders().filter(channel_id__in=list(heads), channel_seq__isnull=False)
            rows = [o for o in list(qs.order_by("-id")[:STREAM_LATEST])[::-1]
                    if _position(o) <= heads[o.channel_id][1]]
            prefetch_related_objects(rows, _items_prefetch())
        cursor = encode_stream_cursor(dict(heads.values()))
        return Response({"results": [s.order_json(o) for o in rows], "cursor": cursor})

    @staticmethod
    def _timeout(request: Request) -> float:
        raw = _query(request, "timeout", max_length=1000, blank=False)
        if raw is None:
            return 0.0
        try:
            value = float(raw) if NUMBER_RE.match(raw) else -1.0
        except ValueError:
            value = -1.0
        if not value >= 0:  # 1e400 reads as infinity: valid, and clamped as any large wait
            raise ValidationError(FieldError("/timeout", "timeout must be a number of seconds ≥ 0.", "invalid"))
        return min(value, float(conf.get("STREAM_MAX_TIMEOUT_SECONDS")))


# -- directives ------------------------------------------------------------------------------


class DirectiveListView(OmnimanView):
    permission_classes = [IsAuthenticated, IsOperator]

    @docs.directive_list
    def get(self, request: Request) -> Response:
        qs = Directive.objects.all()
        status = _query(request, "status", max_length=16, blank=False)
        if status is not None:
            if status not in Directive.Status.values:
                raise ValidationError(FieldError(
                    "/status", f"status must be one of {', '.join(Directive.Status.values)}.", "invalid_choice"
                ))
            qs = qs.filter(status=status)
        topic = _query(request, "topic")
        if topic is not None:
            qs = qs.filter(topic=topic)
        page = paginate(request, qs)
        return Response(page.body([s.directive_json(d) for d in page.rows]))


class DirectiveMetricsView(OmnimanView):
    """Counts by status and how far behind the queue is, for dashboards and alerts."""

    permission_classes = [IsAuthenticated, IsOperator]

    @docs.directive_metrics
    def get(self, request: Request) -> Response:
        return Response(directive_metrics().as_dict())


class DirectiveRetryView(OmnimanView):
    permission_classes = [IsAuthenticated, IsOperator]

    @docs.directive_retry
    def post(self, request: Request, pk: str) -> Response:
        body = self.body()
        s.check_fields(body)
        directive = retry_directive(int(pk), actor=self.actor())
        return Response(s.directive_json(directive))

