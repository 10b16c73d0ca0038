from __future__ import annotations

from django.db import models


class Product(models.Model):
    """One item of the café's menu: the catalog of internal-pricing channels."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    price_q = models.PositiveBigIntegerField(help_text="Price in minor units (cents).")
    in_stock = models.BooleanField(default=True)
    stock = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Units on hand; empty means not counted (only in_stock matters).",
    )

    class Meta:
        ordering = ("sku",)

    def __str__(self) -> str:
        return f"{self.sku} ({self.name})"


class StockHold(models.Model):
    """The stock one session holds, then its order uses: one row per (channel,
    session). ``Product.stock`` counts the units free to sell; a row in ``held`` or
    ``consumed`` has taken its ``quantities`` out of it, and ``released`` (the
    session ended without an order) or ``cancelled`` (its order was cancelled) gave
    them back. So for every product: stock + held + consumed = what the shop put in.
    See ``cafe/stock.py``."""

    class State(models.TextChoices):
        HELD = "held"
        CONSUMED = "consumed"
        RELEASED = "released"
        CANCELLED = "cancelled"

    channel_code = models.CharField(max_length=64)
    session_key = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.HELD)
    #: sku -> quantity (a decimal as a string), as the session or order had it.
    quantities = models.JSONField(default=dict)
    order_ref = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel_code", "session_key"], name="cafe_stockhold_session"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_code}/{self.session_key}: {self.state}"


class KitchenNotice(models.Model):
    """A POS order the kitchen must stop making: written by the ``kitchen.cancelled``
    handler when the order enters ``cancelled``, shown on the kitchen display."""

    order_ref = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.order_ref} cancelled"
