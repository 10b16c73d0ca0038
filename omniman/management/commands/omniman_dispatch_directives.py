"""Run the directive reaper: for hosts without Celery beat, and for the in-process
backend, where it runs retries that are due."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from omniman import conf
from omniman.directives.reaper import reap


class Command(BaseCommand):
    help = (
        "Return expired directive leases to the queue and dispatch every due queued "
        "directive (once, or every --loop seconds)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop", nargs="?", type=float, const=-1.0, default=None, metavar="SECONDS",
            help="Repeat every SECONDS (default: DIRECTIVE_REAPER_INTERVAL_SECONDS) until stopped.",
        )
        parser.add_argument("--limit", type=int, default=None, help="Most directives to dispatch per pass.")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["loop"]
        if interval is not None and interval <= 0:
            interval = conf.get("DIRECTIVE_REAPER_INTERVAL_SECONDS")
        try:
            while True:
                result = reap(limit=options["limit"])
                if options["verbosity"] >= 1 and (interval is None or any(result.values())):
                    self.stdout.write(
                        "reclaimed {reclaimed} failed {failed} dispatched {dispatched} unsent {unsent}".format(
                            **result
                        )
                    )
                if interval is None:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:  # pragma: no cover - interactive stop
            return
