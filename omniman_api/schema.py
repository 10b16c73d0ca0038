"""The OpenAPI 3 document (drf-spectacular), served at ``schema/`` without auth."""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny


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


class SchemaView(SpectacularAPIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    custom_settings = {
        "TITLE": "omniman",
        "DESCRIPTION": "Sessions of ops, exactly-once commits, orders and directives.",
        "PREPROCESSING_HOOKS": ["omniman_api.schema.only_omniman"],
        "COMPONENT_SPLIT_REQUEST": True,
        "SERVE_INCLUDE_SCHEMA": False,
    }
