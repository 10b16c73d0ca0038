from __future__ import annotations

from django.apps import AppConfig


class DrfMinConfig(AppConfig):
    name = "bench.drfmin"
    label = "drfmin"
    default_auto_field = "django.db.models.BigAutoField"
