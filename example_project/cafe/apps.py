from __future__ import annotations

from django.apps import AppConfig


class CafeConfig(AppConfig):
    name = "cafe"
    verbose_name = "Café"
    default_auto_field = "django.db.models.BigAutoField"
