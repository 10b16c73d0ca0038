from __future__ import annotations

from django.urls import path

from bench.drfmin import views

urlpatterns = [
    path("min/sessions/<str:key>/", views.CartView.as_view()),
    path("min/sessions/<str:key>/modify/", views.ModifyView.as_view()),
]
