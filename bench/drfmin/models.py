from __future__ import annotations

from django.db import models


class Cart(models.Model):
    """A session: its lines live in one jsonb column."""

    channel = models.CharField(max_length=32)
    key = models.CharField(max_length=64)
    rev = models.PositiveIntegerField(default=1)
    lines = models.JSONField(default=list)
    next_line = models.PositiveIntegerField(default=1)
    total_q = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "key"], name="drfmin_cart_channel_key")]
