from __future__ import annotations

from collections.abc import Mapping, Sequence

from omniman.ops import OptionGroup

PRICES = {"COFFEE": 500, "ESPRESSO": 450, "CAKE": 1200, "SOLDOUT": 900, "WATER": 300}


class TestCatalog:
    """A fixed catalog for internal-pricing channels in tests."""

    def prices(self, channel: object, skus: set[str]) -> Mapping[str, int]:
        return {sku: PRICES[sku] for sku in skus if sku in PRICES}

    def option_groups(self, channel: object, skus: set[str]) -> Mapping[str, Sequence[OptionGroup]]:
        """COFFEE takes one milk and up to two shots."""
        groups = [OptionGroup("MILK", {"OAT": 150, "SOY": 150}, max=1), OptionGroup("SHOT", {"SHOT": 200}, max=2)]
        return {sku: groups for sku in skus if sku == "COFFEE"}
