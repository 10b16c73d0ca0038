"""Delete sessions that ended without an order, after the retention period."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omniman.services.retention import purge_sessions


class Command(BaseCommand):
    help = (
        "Delete abandoned sessions, and open sessions past their expiry, older than "
        "OMNIMAN['SESSION_RETENTION_DAYS'] (or --days). Committed sessions and orders are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Retention in days (default: the setting).")
        parser.add_argument("--batch-size", type=int, default=500, help="Sessions per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None and options["days"] < 0:
            raise CommandError("--days must be 0 or more.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        count = purge_sessions(days=options["days"], batch_size=options["batch_size"])
        self.stdout.write(f"Purged {count} session(s).")
