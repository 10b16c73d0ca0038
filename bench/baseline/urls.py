from __future__ import annotations

from django.conf import settings
from django.urls import include, re_path

from bench.baseline import views

urlpatterns = [
    re_path(r"^bare/modify/?$", views.BareModify.as_view()),
    re_path(r"^bare/sessions/?$", views.BareCreate.as_view()),
    re_path(r"^bare/sessions/(?P<key>[A-Za-z0-9._:-]+)/?$", views.BareSession.as_view()),
    re_path(r"^bare/sessions/(?P<key>[A-Za-z0-9._:-]+)/commit/?$", views.BareCommit.as_view()),
    re_path(r"^bare/orders/?$", views.BareOrders.as_view()),
]

if settings.HAS_API:
    urlpatterns.append(re_path(r"^api/", include("omniman_api.urls")))
