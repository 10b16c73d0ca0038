from __future__ import annotations

from django.apps import AppConfig


class OmnimanApiConfig(AppConfig):
    name = "omniman_api"
    verbose_name = "omniman HTTP API"

    def ready(self) -> None:
        from django.core import checks

        from omniman_api.checks import check_authentication

        checks.register(check_authentication, "omniman")
