from __future__ import annotations

from django.apps import AppConfig


class OmnimanApiConfig(AppConfig):
    name = "omniman_api"
    verbose_name = "omniman HTTP API"
