"""Operator actions on directives: retry a failed one, fail one by hand."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from omniman.exceptions import NotFound, TransitionNotAllowed
from omniman.models import Directive
from omniman.services.directives import dispatch

logger = logging.getLogger(__name__)


def retry_directive(pk: int, *, actor: str = "") -> Directive:
    """failed → queued with attempts reset to 0; any other status is ``TransitionNotAllowed``."""
    with transaction.atomic():
        directive = Directive.objects.select_for_update().filter(pk=pk).first()
        if directive is None:
            raise NotFound("No such directive.")
        if directive.status != Directive.Status.FAILED:
            raise TransitionNotAllowed(f"Only failed directives can be retried; this one is {directive.status}.")
        now = timezone.now()
        directive.status = Directive.Status.QUEUED
        directive.attempts = 0
        directive.available_at = now
        directive.lease_until = None
        directive.updated_at = now
        directive.save(update_fields=["status", "attempts", "available_at", "lease_until", "updated_at"])
        transaction.on_commit(lambda: dispatch([pk]))
    logger.info("directive %s retried by %s", pk, actor)
    return directive


def fail_directive(pk: int, *, actor: str = "", reason: str = "marked failed by an operator") -> bool:
    """queued or running → failed; returns False when it was already done or failed."""
    now = timezone.now()
    changed = Directive.objects.filter(
        pk=pk, status__in=[Directive.Status.QUEUED, Directive.Status.RUNNING]
    ).update(status=Directive.Status.FAILED, last_error=f"{reason} ({actor})", lease_until=None, updated_at=now)
    return bool(changed)
