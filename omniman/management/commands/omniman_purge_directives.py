"""Delete directives that are done, after the retention period."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omniman.services.retention import purge_directives


class Command(BaseCommand):
    help = (
        "Delete directives done longer ago than OMNIMAN['DIRECTIVE_RETENTION_DAYS'] (or --days). "
        "Queued, running and failed directives are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Retention in days (default: the setting).")
        parser.add_argument("--batch-size", type=int, default=1000, help="Directives per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None and options["days"] < 0:
            raise CommandError("--days must be 0 or more.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        count = purge_directives(days=options["days"], batch_size=options["batch_size"])
        self.stdout.write(f"Purged {count} directive(s).")
