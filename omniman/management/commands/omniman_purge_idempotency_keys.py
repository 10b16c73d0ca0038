"""Delete idempotency keys older than OMNIMAN["IDEMPOTENCY_TTL_SECONDS"]."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from omniman.services.idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete expired idempotency keys."

    def handle(self, *args: Any, **options: Any) -> None:
        count = purge_expired()
        self.stdout.write(f"Purged {count} idempotency key(s).")
