"""The OpenAPI document covers the payments routes, the order's new fields and the
``payment_status`` filter."""

from __future__ import annotations

import pytest

from omniman.contrib.payments.models import PaymentStatus
from omniman_api.schema import document

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def doc():
    return document()


def test_the_routes_are_in_the_document(doc):
    paths = doc["paths"]
    assert set(paths["/orders/{ref}/payments/"]) == {"get", "post"}
    assert set(paths["/orders/{ref}/refunds/"]) == {"post"}
    post = paths["/orders/{ref}/payments/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PaymentInRequest"}
    assert "default" in post["responses"] and "201" in post["responses"]
    assert {p["name"] for p in post["parameters"]} == {"ref", "Idempotency-Key"}
    assert "Idempotent-Replayed" in post["responses"]["201"]["headers"]


def test_the_request_bodies_are_exact(doc):
    schemas = doc["components"]["schemas"]
    payment = schemas["PaymentInRequest"]
    assert payment["additionalProperties"] is False and payment["required"] == ["method", "amount_q"]
    assert payment["properties"]["amount_q"] == {"type": "integer", "minimum": 0, "maximum": 10**12,
                                                 "description": "Minor units, tips apart."}
    refund = schemas["RefundInRequest"]
    assert refund["anyOf"] == [{"required": ["amount_q"]}, {"required": ["lines"]}]
    assert refund["properties"]["lines"]["items"]["additionalProperties"] is False


def test_orders_have_the_payment_fields_and_filter(doc):
    order = doc["components"]["schemas"]["OrderOut"]
    assert {"payment_status", "amount_paid_q", "amount_refunded_q", "amount_due_q", "tip_q"} <= set(order["required"])
    assert order["properties"]["payment_status"]["enum"] == list(PaymentStatus.values)
    [param] = [p for p in doc["paths"]["/orders/"]["get"]["parameters"] if p["name"] == "payment_status"]
    assert param["schema"] == {"type": "string", "enum": list(PaymentStatus.values)}
