"""Operators' command for directives: list, retry, fail, metrics."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omniman.exceptions import OmnimanError
from omniman.models import Directive
from omniman.services.directive_ops import directive_metrics, fail_directive, retry_directive


class Command(BaseCommand):
    help = "List directives, retry failed ones, mark some failed, or print metrics."
    # An operator's tool: it must show the queue when the project is misconfigured
    # (omniman.E202 and the like are what leave directives queued).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="Newest first.")
        ls.add_argument("--status", choices=Directive.Status.values)
        ls.add_argument("--topic")
        ls.add_argument("--limit", type=int, default=50)
        ls.add_argument("--json", action="store_true", help="One JSON object per line.")
        retry = sub.add_parser("retry", help="Queue failed directives again (attempts reset to 0).")
        retry.add_argument("ids", nargs="*", type=int)
        retry.add_argument("--all-failed", action="store_true", help="Every failed directive.")
        retry.add_argument("--topic", help="With --all-failed: only this topic.")
        fail = sub.add_parser(
            "fail", help="Mark queued or running directives failed (done or failed ones are left unchanged)."
        )
        fail.add_argument("ids", nargs="+", type=int)
        fail.add_argument("--reason", default="marked failed by an operator")
        metrics = sub.add_parser("metrics", help="Counts by status and the age of the oldest queued.")
        metrics.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "do_" + options["action"])(**options)

    def do_list(self, *, status: str | None, topic: str | None, limit: int, json: bool, **_: Any) -> None:
        qs = Directive.objects.order_by("-id")
        if status:
            qs = qs.filter(status=status)
        if topic:
            qs = qs.filter(topic=topic)
        for d in qs[:limit]:
            if json:
                self.stdout.write(_json({
                    "id": d.pk, "topic": d.topic, "status": d.status, "attempts": d.attempts,
                    "max_attempts": d.max_attempts, "available_at": d.available_at.isoformat(),
                    "last_error": d.last_error, "payload": d.payload, "created_at": d.created_at.isoformat(),
                }))
            else:
                error = "\t" + d.last_error.splitlines()[-1][:80] if d.last_error else ""
                self.stdout.write(
                    f"{d.pk}\t{d.topic}\t{d.status}\t{d.attempts}/{d.max_attempts}\t"
                    f"{d.available_at:%Y-%m-%d %H:%M:%S}{error}"
                )

    def do_retry(self, *, ids: list[int], all_failed: bool, topic: str | None, **_: Any) -> None:
        if all_failed:
            qs = Directive.objects.filter(status=Directive.Status.FAILED)
            if topic:
                qs = qs.filter(topic=topic)
            ids = [*ids, *qs.order_by("id").values_list("pk", flat=True)]
        if not ids:
            raise CommandError("Give directive ids or --all-failed.")
        errors = 0
        for pk in dict.fromkeys(ids):
            try:
                retry_directive(pk, actor="omniman_directives")
                self.stdout.write(f"{pk}\tqueued")
            except OmnimanError as exc:
                errors += 1
                self.stderr.write(f"{pk}\t{exc.code}: {exc.detail}")
        if errors:
            raise CommandError(f"{errors} directive(s) could not be retried.")

    def do_fail(self, *, ids: list[int], reason: str, **_: Any) -> None:
        errors = 0
        for pk in dict.fromkeys(ids):
            if fail_directive(pk, actor="omniman_directives", reason=reason):
                self.stdout.write(f"{pk}\tfailed")
                continue
            status = Directive.objects.filter(pk=pk).values_list("status", flat=True).first()
            if status is None:
                errors += 1
                self.stderr.write(f"{pk}\tnot_found: No such directive.")
            else:
                self.stdout.write(f"{pk}\tunchanged (already {status})")
        if errors:
            raise CommandError(f"{errors} directive(s) could not be marked failed.")

    def do_metrics(self, *, json: bool, **_: Any) -> None:
        data = directive_metrics().as_dict()
        if json:
            self.stdout.write(_json(data))
        else:
            for key, value in data.items():
                self.stdout.write(f"{key}\t{round(value, 3) if isinstance(value, float) else value}")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
