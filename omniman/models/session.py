from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Cast
from django.db.models.lookups import GreaterThan

from omniman.fields import FastJSONField
from omniman.models.channel import Channel
from omniman.models.queries import LinesJSON, decode_lines, load_lines


class SessionQuerySet(models.QuerySet["Session"]):
    def with_items(self) -> SessionQuerySet:
        """Bring every session's lines in the same query (a JSON aggregate), so that
        ``session.items`` costs no further query."""
        return self.annotate(lines_json=LinesJSON())


class Session(models.Model):
    """The mutable state before commit: a cart, a tab, a draft, an import.

    Its lines live in :class:`SessionLine` rows; ``line_count`` and ``subtotal_q``
    are kept with every write, so a modify reads and writes only the lines it names."""

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
    data = FastJSONField(default=dict, blank=True)
    pricing = FastJSONField(default=dict, blank=True)
    # How many lines, and the sum of their line totals: kept with every write.
    line_count = models.PositiveIntegerField(default=0)
    subtotal_q = models.BigIntegerField(default=0)
    total_q = models.BigIntegerField(default=0)
    checks = FastJSONField(default=dict, blank=True)
    issues = FastJSONField(default=list, blank=True)
    # The next server-made line id (L1, L2, ...): ids are never reused in a session.
    next_line = models.PositiveIntegerField(default=1)
    # The position the next new line gets (lines are shown in position order).
    next_position = models.PositiveIntegerField(default=0)
    handle_type = models.CharField(max_length=64, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    order_ref = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = SessionQuerySet.as_manager()

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

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_items", None)
        self.__dict__.pop("lines_json", None)
        super().refresh_from_db(*args, **kwargs)

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every line as a dict (``line_id``, ``sku``, ``qty``, ``unit_price_q``,
        ``line_total_q``, ``meta``, ``options``, ``adjustments``) in display order. Read-only: loaded once, from the
        ``with_items()`` annotation when the query had it, else with one query."""
        items = self.__dict__.get("_items")
        if items is None:
            raw = self.__dict__.get("lines_json")
            items = decode_lines(raw) if raw is not None else (load_lines(self.pk) if self.pk else [])
            self.__dict__["_items"] = items
        return items

    def set_items(self, items: list[dict[str, Any]] | None) -> None:
        """Replace the cached lines (``None``: load them again when next read). The
        rows are written by the session services only."""
        self.__dict__.pop("lines_json", None)
        if items is None:
            self.__dict__.pop("_items", None)
        else:
            self.__dict__["_items"] = items


class SessionLine(models.Model):
    """One line of a session. ``qty`` is kept as its canonical decimal string ("2",
    "0.25"), exactly as the API shows it."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_id = models.CharField(max_length=64)
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    qty = models.CharField(max_length=16)
    unit_price_q = models.BigIntegerField()
    line_total_q = models.BigIntegerField()
    meta = FastJSONField(default=dict, blank=True)
    # Each {"code", "qty", "unit_price_q"}: priced options, part of the line's total.
    options = FastJSONField(default=list, blank=True)
    # Each {"code", "label", "kind", "amount_q"}: what the channel's modifiers add.
    adjustments = FastJSONField(default=list, blank=True)

    class Meta:
        ordering = ("session_id", "position")
        constraints = [
            models.UniqueConstraint(fields=["session", "line_id"], name="omniman_line_session_line_id"),
            models.CheckConstraint(
                condition=GreaterThan(Cast("qty", models.DecimalField(max_digits=10, decimal_places=3)), 0),
                name="omniman_line_qty_gt_0",
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price_q__gte=0, line_total_q__gte=0),
                name="omniman_line_amounts_gte_0",
            ),
        ]
        indexes = [models.Index(fields=["session", "position"], name="omniman_line_session_pos")]

    def __str__(self) -> str:
        return f"{self.session_id}:{self.line_id}"
