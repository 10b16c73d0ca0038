"""Abandon open sessions whose ``expires_at`` has passed (run it from cron or beat)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from omniman.services import expire_sessions


class Command(BaseCommand):
    help = "Abandon open sessions whose expires_at has passed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Sessions per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        count = expire_sessions(batch_size=options["batch_size"])
        self.stdout.write(f"Expired {count} session(s).")
