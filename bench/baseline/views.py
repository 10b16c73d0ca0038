"""Bare DRF views: the same row work as omniman's endpoints with nothing else.

Each one authenticates with the same token, locks or reads the same row, writes the
same JSON columns and answers with the same fields; no validation, no preconditions,
no idempotency, no grants. They are the ceiling omniman is measured against."""

from __future__ import annotations

import secrets
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.baseline import rows
from omniman.models import Channel, Order, Session


def _etag(s: Session) -> str:
    return f'"s{s.pk}.{s.rev}.{s.version}"'


def session_json(s: Session) -> dict[str, Any]:
    return {
        "session_key": s.session_key,
        "channel_code": s.channel.code,
        "state": s.state,
        "rev": s.rev,
        "items": s.items,
        "data": s.data,
        "pricing": s.pricing,
        "total_q": s.total_q,
        "currency": s.channel.currency,
        "checks": s.checks,
        "issues": s.issues,
        "handle_type": s.handle_type,
        "handle_ref": s.handle_ref,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "expires_at": s.expires_at,
    }


class BareModify(APIView):
    """Lock the row, set the qty of the named lines, keep the totals, write, return it."""

    def post(self, request: Request) -> Response:
        body = request.data
        s = rows.lock_update(body["channel_code"], body["session_key"], body["ops"])
        return Response(session_json(s), headers={"ETag": _etag(s)})


class BareSession(APIView):
    def get(self, request: Request, key: str) -> Response:
        s = Session.objects.select_related("channel").get(
            channel__code=request.query_params["channel_code"], session_key=key
        )
        if request.headers.get("If-None-Match") == _etag(s):
            return Response(status=304, headers={"ETag": _etag(s)})
        return Response(session_json(s), headers={"ETag": _etag(s)})


class BareCreate(APIView):
    def post(self, request: Request) -> Response:
        channel = Channel.objects.get(code=request.data["channel_code"])
        s = Session.objects.create(
            channel=channel,
            session_key=request.data.get("session_key") or "S-" + secrets.token_hex(8).upper(),
            pricing={"subtotal_q": 0, "adjustments": [], "total_q": 0},
        )
        return Response(session_json(s), status=201, headers={"ETag": _etag(s)})


class BareCommit(APIView):
    """Lock the row, write the order and its items, close the session."""

    def post(self, request: Request, key: str) -> Response:
        order, s, count = rows.commit(request.data["channel_code"], key)
        return Response({
            "order_ref": order.ref, "status": order.status, "total_q": order.total_q,
            "currency": order.currency, "items_count": count,
            "session_key": s.session_key, "channel_code": s.channel.code,
        }, status=201)


class BareOrders(APIView):
    """Newest first, keyset by id (``?before=ID``), 50 a page, with items."""

    def get(self, request: Request) -> Response:
        qs = Order.objects.select_related("channel").prefetch_related("items").order_by("-id")
        if "before" in request.query_params:
            qs = qs.filter(id__lt=int(request.query_params["before"]))
        rows = list(qs[:50])
        return Response({"results": [
            {"ref": o.ref, "channel_code": o.channel.code, "status": o.status, "total_q": o.total_q,
             "items": [{"line_id": i.line_id, "sku": i.sku, "qty": str(i.qty)} for i in o.items.all()]}
            for o in rows
        ]})
