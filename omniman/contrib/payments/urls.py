"""Routes mounted by ``omniman_api.urls`` (see :mod:`omniman.extensions`), and the exact
rules of their request bodies for the OpenAPI document (``REQUEST_SCHEMAS``)."""

from __future__ import annotations

from django.urls import re_path

from omniman.contrib.payments import api
from omniman.contrib.payments.schema import REQUEST_SCHEMAS
from omniman.validators import IDENT_PATTERN

REF = rf"(?P<ref>{IDENT_PATTERN})"

__all__ = ["REQUEST_SCHEMAS", "urlpatterns"]

urlpatterns = [
    re_path(rf"^orders/{REF}/payments/?$", api.OrderPaymentsView.as_view(), name="order-payments"),
    re_path(rf"^orders/{REF}/refunds/?$", api.OrderRefundsView.as_view(), name="order-refunds"),
]
