from __future__ import annotations

from typing import Any

from django.db import models

from omniman.fields import FastJSONField
from omniman.models.channel import Channel


class Session(models.Model):
    """The mutable state before commit: a cart, a tab, a draft, an import."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        COMMITTED = "committed", "committed"
        ABANDONED = "abandoned", "abandoned"

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="sessions")
    session_key = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    # +1 per successful modify, whatever the number of ops.
    rev = models.PositiveIntegerField(default=0)
    # +1 on every change of the representation (modify, check, issue, state): the ETag.
    version = models.PositiveIntegerField(default=0)
    items = FastJSONField(default=list, blank=True)
    data = FastJSONField(default=dict, blank=True)
    pricing = FastJSONField(default=dict, blank=True)
    total_q = models.BigIntegerField(default=0)
    checks = FastJSONField(default=dict, blank=True)
    issues = FastJSONField(default=list, blank=True)
    # The next server-made line id (L1, L2, ...): ids are never reused in a session.
    next_line = models.PositiveIntegerField(default=1)
    handle_type = models.CharField(max_length=64, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    order_ref = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "session_key"], name="omniman_session_channel_key"
            ),
            models.CheckConstraint(condition=models.Q(total_q__gte=0), name="omniman_session_total_gte_0"),
        ]
        indexes = [
            models.Index(fields=["channel", "state"], name="omniman_ses_chan_state"),
            models.Index(fields=["handle_type", "handle_ref"], name="omniman_ses_handle"),
            models.Index(fields=["created_at"], name="omniman_ses_created"),
            models.Index(fields=["state", "expires_at"], name="omniman_ses_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.session_key}"

    @property
    def etag(self) -> str:
        """A strong, quoted ETag: changes exactly when the representation changes."""
        return f'"s{self.pk}.{self.rev}.{self.version}"'

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    def state_dict(self) -> dict[str, Any]:
        """The part of a session that the op engine reads and returns."""
        return {
            "items": self.items,
            "data": self.data,
            "pricing": self.pricing,
            "total_q": self.total_q,
            "next_line": self.next_line,
        }
