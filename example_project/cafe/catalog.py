"""The café's pricing backend for ``internal`` pricing channels (``web``, ``shop``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cafe.models import Product
from omniman.models import Channel
from omniman.ops import OptionGroup

# What a milk drink takes: one milk (oat or soy) and up to two extra shots.
MILK = OptionGroup("MILK", {"OAT": 150, "SOY": 150}, max=1)
SHOT = OptionGroup("SHOT", {"SHOT": 200}, max=2)
OPTION_GROUPS: dict[str, list[OptionGroup]] = {"CAPPUCCINO": [MILK, SHOT], "COFFEE": [MILK, SHOT]}


class Catalog:
    """Prices come from :class:`cafe.models.Product`, in one query per modify.

    Sold-out products keep their price: selling them is refused by the stock check,
    not by pricing, so the customer sees why."""

    def prices(self, channel: Channel, skus: set[str]) -> Mapping[str, int]:
        return dict(Product.objects.filter(sku__in=skus).values_list("sku", "price_q"))

    def option_groups(self, channel: Channel, skus: set[str]) -> Mapping[str, Sequence[OptionGroup]]:
        """The options each sku takes (no query: they are fixed here)."""
        return {sku: OPTION_GROUPS[sku] for sku in skus if sku in OPTION_GROUPS}
