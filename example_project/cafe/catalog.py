"""The café's pricing backend for ``internal`` pricing channels (``web``)."""

from __future__ import annotations

from collections.abc import Mapping

from cafe.models import Product
from omniman.models import Channel


class Catalog:
    """Prices come from :class:`cafe.models.Product`, in one query per modify.

    Sold-out products keep their price: selling them is refused by the stock check,
    not by pricing, so the customer sees why."""

    def prices(self, channel: Channel, skus: set[str]) -> Mapping[str, int]:
        return dict(Product.objects.filter(sku__in=skus).values_list("sku", "price_q"))
