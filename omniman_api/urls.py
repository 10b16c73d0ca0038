"""The API's routes. Mount under any prefix: ``path("api/", include("omniman_api.urls"))``.

Every path answers with and without its trailing slash (POST included, no redirect),
and any other path under the prefix is a problem+json 404."""

from __future__ import annotations

from importlib import import_module

from django.urls import re_path

from omniman import extensions
from omniman.validators import IDENT_PATTERN
from omniman_api import views
from omniman_api.schema import SchemaView

app_name = "omniman_api"

KEY = rf"(?P<session_key>{IDENT_PATTERN})"
REF = rf"(?P<ref>{IDENT_PATTERN})"

urlpatterns = [
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    re_path(r"^schema/?$", SchemaView.as_view(), name="schema"),
    re_path(r"^channels/?$", views.ChannelListView.as_view(), name="channel-list"),
    re_path(r"^sessions/?$", views.SessionListView.as_view(), name="session-list"),
    re_path(rf"^sessions/{KEY}/?$", views.SessionDetailView.as_view(), name="session-detail"),
    re_path(rf"^sessions/{KEY}/modify/?$", views.SessionModifyView.as_view(), name="session-modify"),
    re_path(rf"^sessions/{KEY}/commit/?$", views.SessionCommitView.as_view(), name="session-commit"),
    re_path(rf"^sessions/{KEY}/abandon/?$", views.SessionAbandonView.as_view(), name="session-abandon"),
    re_path(rf"^sessions/{KEY}/resolve/?$", views.SessionResolveView.as_view(), name="session-resolve"),
    re_path(r"^orders/?$", views.OrderListView.as_view(), name="order-list"),
    re_path(r"^orders/stream/?$", views.OrderStreamView.as_view(), name="order-stream"),
    re_path(rf"^orders/{REF}/?$", views.OrderDetailView.as_view(), name="order-detail"),
    re_path(rf"^orders/{REF}/events/?$", views.OrderEventsView.as_view(), name="order-events"),
    re_path(rf"^orders/{REF}/transition/?$", views.OrderTransitionView.as_view(), name="order-transition"),
    re_path(r"^directives/?$", views.DirectiveListView.as_view(), name="directive-list"),
    re_path(r"^directives/metrics/?$", views.DirectiveMetricsView.as_view(), name="directive-metrics"),
    re_path(r"^directives/(?P<pk>[0-9]{1,18})/retry/?$", views.DirectiveRetryView.as_view(),
            name="directive-retry"),
    # Routes of order extensions (omniman.extensions), e.g. omniman.contrib.payments.
    *(route for module in extensions.api_urls() for route in import_module(module).urlpatterns),
    re_path(r"^[\s\S]*$", views.NotFoundView.as_view(), name="not-found"),  # newlines too
]
