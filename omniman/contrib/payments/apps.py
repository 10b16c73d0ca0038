from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "omniman.contrib.payments"
    label = "omniman_payments"
    verbose_name = "omniman payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from omniman import extensions
        from omniman.contrib.payments.checks import check_methods
        from omniman.contrib.payments.extension import EXTENSION
        from omniman.contrib.payments.handlers import settle
        from omniman.contrib.payments.services import SETTLE_TOPIC
        from omniman.registry import registry

        checks.register(check_methods, "omniman")
        extensions.register(EXTENSION)
        registry.register_handler(SETTLE_TOPIC, settle, max_attempts=10, lease_seconds=120)
