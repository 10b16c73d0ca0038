from __future__ import annotations

from django.db import models
from django.utils import timezone

from omniman.fields import FastJSONField


class Directive(models.Model):
    """A durable side-effect job, written in the transaction of the change that caused it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    topic = models.CharField(max_length=128)
    payload = FastJSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    available_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    #: When the row was last handed to the broker (or run in process); None when it
    #: must be sent (its first attempt was delayed, or a send failed). A queued row
    #: sent before its ``available_at`` (a retry pushed it back) is sent again when due.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["status", "available_at"], name="omniman_dir_status_avail"),
            models.Index(fields=["topic", "status"], name="omniman_dir_topic_status"),
            models.Index(fields=["status", "lease_until"], name="omniman_dir_status_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.topic}#{self.pk}"
