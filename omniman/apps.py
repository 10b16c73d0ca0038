from __future__ import annotations

from django.apps import AppConfig


class OmnimanConfig(AppConfig):
    name = "omniman"
    verbose_name = "omniman"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from omniman import conf
        from omniman.checks import check_settings

        checks.register(check_settings, "omniman")
        if conf.get("AUTODISCOVER"):
            from django.utils.module_loading import autodiscover_modules

            autodiscover_modules("omniman_handlers")
