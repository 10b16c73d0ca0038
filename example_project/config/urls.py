from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from cafe import views

urlpatterns = [
    path("", views.index, name="index"),
    path("pos/", views.pos, name="pos"),
    path("pos/sw.js", views.pos_service_worker, name="pos-sw"),
    path("kds/", views.kds, name="kds"),
    path("kds/cancelled/", views.kds_cancelled, name="kds-cancelled"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("omniman_api.urls")),
]

if settings.SILK:
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
