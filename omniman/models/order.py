from __future__ import annotations

from django.db import models

from omniman.fields import FastJSONField
from omniman.models.channel import Channel
from omniman.models.session import Session


class Order(models.Model):
    """An immutable snapshot sealed at commit; only ``status`` changes afterwards."""

    ref = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="orders")
    session = models.OneToOneField(
        Session, on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    session_key = models.CharField(max_length=64)
    handle_type = models.CharField(max_length=64, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    data = FastJSONField(default=dict, blank=True)
    pricing = FastJSONField(default=dict, blank=True)
    total_q = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # Unique in its channel when not blank (a marketplace order is imported once).
    external_ref = models.CharField(max_length=128, blank=True, default="")
    # When the customer placed it: the client's time for an import, else the commit's.
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=64)
    # +1 on every status change: part of the ETag.
    version = models.PositiveIntegerField(default=0)
    # Position in its channel's commit order, for orders/stream/: 1, 2, 3... per
    # channel, handed out last in the commit transaction under the channel's lock, so a
    # reader never skips an order that commits late, and channels never wait on each other.
    channel_seq = models.BigIntegerField(null=True, blank=True)
    # The ticket number, per channel and business day (services.numbers); None when the
    # channel numbers no tickets (config ``ticket_numbers: "none"``).
    number = models.PositiveIntegerField(null=True, blank=True)
    # The channel's business day at commit (config ``business_day_starts_at``, in the
    # project's time zone); None only for orders committed before numbering existed.
    business_day = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.CheckConstraint(condition=models.Q(total_q__gte=0), name="omniman_order_total_gte_0"),
            models.UniqueConstraint(
                fields=["channel", "external_ref"],
                condition=~models.Q(external_ref=""),
                name="omniman_order_channel_external_ref",
            ),
            models.UniqueConstraint(fields=["channel", "channel_seq"], name="omniman_order_channel_seq"),
            # The counter already hands out each number once; this is the last guard,
            # and its index finds "ticket 42 today" (orders/?number=) whatever the channel.
            models.UniqueConstraint(
                fields=["business_day", "number", "channel"],
                condition=models.Q(number__isnull=False),
                name="omniman_order_day_number",
            ),
        ]
        indexes = [
            models.Index(fields=["channel", "status"], name="omniman_ord_chan_status"),
            models.Index(fields=["created_at", "id"], name="omniman_ord_created_id"),
            models.Index(fields=["external_ref"], name="omniman_ord_external_ref"),
            models.Index(fields=["channel", "id"], name="omniman_ord_chan_id"),
        ]

    def __str__(self) -> str:
        return self.ref


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    line_id = models.CharField(max_length=64)
    sku = models.CharField(max_length=64)
    qty = models.DecimalField(max_digits=10, decimal_places=3)
    unit_price_q = models.BigIntegerField()
    line_total_q = models.BigIntegerField()
    meta = FastJSONField(default=dict, blank=True)
    options = FastJSONField(default=list, blank=True)
    adjustments = FastJSONField(default=list, blank=True)

    class Meta:
        # order_id, not "order": ordering by the relation would join Order and sort by
        # its own ordering (newest first) instead of keeping an order's items together.
        ordering = ("order_id", "position")
        constraints = [
            models.UniqueConstraint(fields=["order", "line_id"], name="omniman_item_line_unique"),
            models.CheckConstraint(condition=models.Q(qty__gt=0), name="omniman_item_qty_gt_0"),
            models.CheckConstraint(
                condition=models.Q(unit_price_q__gte=0, line_total_q__gte=0),
                name="omniman_item_amounts_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.line_id}"


class OrderEvent(models.Model):
    """One audit row per change of an order: created, status changed, ..."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64)
    actor = models.CharField(max_length=150, blank=True, default="")
    payload = FastJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("order_id", "id")
        indexes = [models.Index(fields=["order", "id"], name="omniman_evt_order_id")]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.type}"


class TicketCounter(models.Model):
    """The last ticket number a channel handed out on one business day. One row per
    (channel, day), bumped by one statement inside the commit's transaction
    (:func:`omniman.services.numbers.next_number`): its row lock orders the commits of
    that channel and day, and a rolled-back commit gives its number back."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="ticket_counters")
    business_day = models.DateField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "business_day"], name="omniman_ticket_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.business_day}:{self.last}"
