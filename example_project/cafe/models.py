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
