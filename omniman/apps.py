from __future__ import annotations

from django.apps import AppConfig


class OmnimanConfig(AppConfig):
    name = "omniman"
    verbose_name = "omniman"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from omniman import conf
        from omniman.celery import connect_worker_checks
        from omniman.checks import (
            check_celery,
            check_channel_topics,
            check_database,
            check_settings,
        )

        checks.register(check_settings, "omniman")
        checks.register(check_database, "omniman")
        checks.register(check_celery, "omniman")
        checks.register(check_channel_topics, "omniman", checks.Tags.database)
        connect_worker_checks()
        if conf.get("AUTODISCOVER"):
            from django.utils.module_loading import autodiscover_modules

            autodiscover_modules("omniman_handlers")
