"""Bare DRF views: the same row work as omniman's endpoints with nothing else.

Each one authenticates with the same token, locks or reads the same row, writes the
same JSON columns and answers with the same fields; no validation, no preconditions,
no idempotency, no grants. They are the ceiling omniman is measured against."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omniman.models import Channel, Order, OrderItem, Session


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


def _lock(channel_code: str, key: str) -> Session:
    return (
        Session.objects.select_for_update(of=("self",))
        .select_related("channel")
        .get(channel__code=channel_code, session_key=key)
    )


class BareModify(APIView):
    """Lock the row, set the qty of one line, recompute totals, write once, return it."""

    def post(self, request: Request) -> Response:
        body = request.data
        with transaction.atomic():
            s = _lock(body["channel_code"], body["session_key"])
            items = [dict(line) for line in s.items]
            for op in body["ops"]:
                for line in items:
                    if line["line_id"] == op["line_id"]:
                        qty = Decimal(str(op["qty"]))
                        line["qty"] = str(qty)
                        line["line_total_q"] = int(qty * line["unit_price_q"])
            s.items = items
            s.total_q = sum(line["line_total_q"] for line in items)
            s.pricing = {"subtotal_q": s.total_q, "adjustments": [], "total_q": s.total_q}
            s.rev += 1
            s.version += 1
            s.updated_at = timezone.now()
            s.save(update_fields=["items", "pricing", "total_q", "rev", "version", "updated_at"])
        return Response(session_json(s), headers={"ETag": s.etag})


class BareSession(APIView):
    def get(self, request: Request, key: str) -> Response:
        s = Session.objects.select_related("channel").get(
            channel__code=request.query_params["channel_code"], session_key=key
        )
        if request.headers.get("If-None-Match") == s.etag:
            return Response(status=304, headers={"ETag": s.etag})
        return Response(session_json(s), headers={"ETag": s.etag})


class BareCreate(APIView):
    def post(self, request: Request) -> Response:
        channel = Channel.objects.get(code=request.data["channel_code"])
        s = Session.objects.create(
            channel=channel,
            session_key=request.data.get("session_key") or "S-" + secrets.token_hex(8).upper(),
            pricing={"subtotal_q": 0, "adjustments": [], "total_q": 0},
        )
        return Response(session_json(s), status=201, headers={"ETag": s.etag})


class BareCommit(APIView):
    """Lock the row, write the order and its items, close the session."""

    def post(self, request: Request, key: str) -> Response:
        with transaction.atomic():
            s = _lock(request.data["channel_code"], key)
            ch = s.channel
            order = Order.objects.create(
                ref=f"{ch.code.upper()}-{secrets.token_hex(5).upper()}",
                channel=ch,
                session=s,
                session_key=s.session_key,
                data=s.data,
                pricing=s.pricing,
                total_q=s.total_q,
                currency=ch.currency,
                status="new",
            )
            OrderItem.objects.bulk_create([
                OrderItem(
                    order=order, position=i, line_id=line["line_id"], sku=line["sku"],
                    qty=Decimal(line["qty"]), unit_price_q=line["unit_price_q"],
                    line_total_q=line["line_total_q"], meta=line.get("meta") or {},
                )
                for i, line in enumerate(s.items)
            ])
            s.state = Session.State.COMMITTED
            s.order_ref = order.ref
            s.version += 1
            s.save(update_fields=["state", "order_ref", "version", "updated_at"])
        return Response({
            "order_ref": order.ref, "status": order.status, "total_q": order.total_q,
            "currency": order.currency, "items_count": len(s.items),
            "session_key": s.session_key, "channel_code": ch.code,
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
