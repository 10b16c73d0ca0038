from __future__ import annotations

from django.db import models

from omniman.fields import FastJSONField
from omniman.models.channel import Channel


class IdempotencyKey(models.Model):
    """The stored answer to one idempotent request, scoped to a channel.

    Written in the same transaction as the change it answers for, so a crash can
    never leave a change without its key or a key without its change."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = FastJSONField(default=dict)
    headers = FastJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "key"], name="omniman_idem_channel_key")
        ]
        indexes = [models.Index(fields=["expires_at"], name="omniman_idem_expires")]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.key}"
