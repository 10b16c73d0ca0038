"""Every retention job once: the one line to put in cron (beat runs it by itself)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from omniman.services.retention import housekeeping


class Command(BaseCommand):
    help = (
        "Delete ended sessions past their retention, abandon open sessions that expired, and delete "
        "done directives and expired idempotency keys past theirs (what the beat task "
        "omniman.housekeeping does)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = housekeeping()
        if options["json"]:
            self.stdout.write(json.dumps(counts))
        else:
            for name, count in counts.items():
                self.stdout.write(f"{name.replace('_', ' ')}: {count}")
