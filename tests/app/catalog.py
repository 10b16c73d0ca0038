from __future__ import annotations

from collections.abc import Mapping

PRICES = {"COFFEE": 500, "ESPRESSO": 450, "CAKE": 1200, "SOLDOUT": 900, "WATER": 300}


class TestCatalog:
    """A fixed catalog for internal-pricing channels in tests."""

    def prices(self, channel: object, skus: set[str]) -> Mapping[str, int]:
        return {sku: PRICES[sku] for sku in skus if sku in PRICES}
