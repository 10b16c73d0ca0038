"""Two views: read a session (with a strong ETag and If-None-Match), modify it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.drfmin.models import Cart


class OpSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["add_line", "set_qty"])
    line_id = serializers.CharField(max_length=32, required=False)
    sku = serializers.CharField(max_length=64, required=False)
    qty = serializers.IntegerField(min_value=1, max_value=10_000)
    unit_price_q = serializers.IntegerField(min_value=0, max_value=2**53 - 1, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        need = ("sku", "unit_price_q") if attrs["op"] == "add_line" else ("line_id",)
        missing = [f for f in need if f not in attrs]
        if missing:
            raise serializers.ValidationError(dict.fromkeys(missing, "This field is required."))
        return attrs


class ModifySerializer(serializers.Serializer):
    channel_code = serializers.CharField(max_length=32)
    ops = OpSerializer(many=True, allow_empty=False, max_length=100)


class CartSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cart
        fields = ["channel", "key", "rev", "lines", "total_q", "updated_at"]


def etag(cart: Cart) -> str:
    return f'"{cart.pk}-{cart.rev}"'


def answer(cart: Cart, code: int = status.HTTP_200_OK) -> Response:
    return Response(CartSerializer(cart).data, status=code, headers={"ETag": etag(cart)})


class CartView(APIView):
    def get(self, request: Request, key: str) -> Response:
        channel = request.query_params.get("channel_code", "")
        cart = Cart.objects.filter(channel=channel, key=key).first()
        if cart is None:
            raise Http404
        if request.headers.get("If-None-Match") == etag(cart):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(cart)})
        return answer(cart)


class ModifyView(APIView):
    def post(self, request: Request, key: str) -> Response:
        ser = ModifySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        with transaction.atomic():
            cart = Cart.objects.select_for_update().filter(channel=ser.validated_data["channel_code"],
                                                           key=key).first()
            if cart is None:
                raise Http404
            lines = {line["line_id"]: line for line in cart.lines}
            for op in ser.validated_data["ops"]:
                if op["op"] == "add_line":
                    line_id = f"L{cart.next_line}"
                    cart.next_line += 1
                    lines[line_id] = {"line_id": line_id, "sku": op["sku"], "qty": op["qty"],
                                      "unit_price_q": op["unit_price_q"]}
                else:
                    if op["line_id"] not in lines:
                        raise serializers.ValidationError({"ops": [f"no line {op['line_id']}"]})
                    lines[op["line_id"]]["qty"] = op["qty"]
            for line in lines.values():
                line["line_total_q"] = line["qty"] * line["unit_price_q"]
            cart.lines = list(lines.values())
            cart.total_q = sum(line["line_total_q"] for line in cart.lines)
            cart.rev += 1
            cart.save(update_fields=["lines", "next_line", "total_q", "rev", "updated_at"])
        return answer(cart)
