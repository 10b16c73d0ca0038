"""Create the café's demo data; running it again changes nothing that is already right."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from cafe.models import Product
from omniman.models import Channel, ChannelGrant

CATALOG = [
    # sku, name, price_q, in_stock
    ("COFFEE", "Coffee", 500, True),
    ("ESPRESSO", "Espresso", 450, True),
    ("CAPPUCCINO", "Cappuccino", 650, True),
    ("CROISSANT", "Croissant", 750, True),
    ("CAKE", "Cake", 1200, True),
    ("WATER", "Water", 300, True),
    ("SOLDOUT", "Sold-out special", 900, False),
]

CAFE_FLOW = {
    "new": ["preparing", "cancelled"],
    "preparing": ["ready", "cancelled"],
    "ready": ["completed", "cancelled"],
    "completed": [],
    "cancelled": [],
}

# The stock hold (cafe/stock.py): a commit makes the order's hold its own (or takes
# the units now when the session held none), a cancel gives them back.
STOCK_HOOKS = {"new": ["stock.consume"], "cancelled": ["stock.return"]}

CHANNELS: dict[str, dict[str, Any]] = {
    "pos": {
        "name": "Counter (POS)",
        "config": {
            "pricing_policy": "external",
            "edit_policy": "open",
            "require_if_match": False,
            "initial_status": "new",
            "order_flow": CAFE_FLOW,
            # "Ticket 42" at the counter and on the kitchen display, from 1 every day at 04:00.
            "ticket_numbers": "daily",
            "business_day_starts_at": "04:00",
            # The kitchen display lists cancelled counter orders (cafe/kitchen.py).
            "status_directives": {**STOCK_HOOKS, "cancelled": ["stock.return", "kitchen.cancelled"]},
            "session_end_directives": ["stock.release"],
        },
    },
    "web": {
        "name": "Web shop",
        "config": {
            "pricing_policy": "internal",
            "edit_policy": "open",
            "require_if_match": True,
            "checks": {"stock": "stock.hold"},
            "required_checks_on_commit": ["stock"],
            "post_commit_directives": ["payment.capture", "notification.order_committed"],
            "initial_status": "new",
            "order_flow": CAFE_FLOW,
            # payment.capture records a captured card payment; an unpaid order is not completed.
            "require_paid_for": ["completed"],
            # The stock check holds units; an abandoned or expired cart gives them back.
            "status_directives": STOCK_HOOKS,
            "session_end_directives": ["stock.release"],
        },
    },
    "shop": {
        "name": "Coffee shop (priced options, coupon, tax)",
        "config": {
            "pricing_policy": "internal",
            "edit_policy": "open",
            "initial_status": "new",
            "order_flow": CAFE_FLOW,
            "modifiers": ["cafe.coupon", "cafe.tax"],
            "tax_inclusive": False,
            "status_directives": STOCK_HOOKS,
        },
    },
    "ifood": {
        "name": "iFood marketplace",
        "config": {
            "pricing_policy": "external",
            "edit_policy": "open",
            "external_ref_path": "external_ref",
            "initial_status": "new",
            "order_flow": CAFE_FLOW,
            "status_directives": STOCK_HOOKS,
        },
    },
}

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
# Counted stock of a new product: the stock hold takes real units from it (a commit on
# any channel, a marketplace import), so enough for load tests and imports of
# thousands of orders to leave the web channel's check passing.
STOCK_ON_HAND = Decimal("1000000")


class Command(BaseCommand):
    help = "Create the café's catalog, the channels pos, web, shop and ifood, and the user demo/demo."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            products = self.seed_catalog()
            channels = self.seed_channels()
            self.seed_demo_user(channels)
        self.stdout.write(
            f"Seeded {products} products, channels {', '.join(c.code for c in channels)} "
            f"and the user {DEMO_USERNAME} (password {DEMO_PASSWORD})."
        )

    def seed_catalog(self) -> int:
        for sku, name, price_q, in_stock in CATALOG:
            # The count only when the product is new: a rerun must not reset the
            # stock that orders took and sessions hold (cafe/stock.py).
            Product.objects.update_or_create(
                sku=sku,
                defaults={"name": name, "price_q": price_q, "in_stock": in_stock},
                create_defaults={
                    "name": name,
                    "price_q": price_q,
                    "in_stock": in_stock,
                    "stock": STOCK_ON_HAND if in_stock else Decimal("0"),
                },
            )
        return len(CATALOG)

    def seed_channels(self) -> list[Channel]:
        channels = []
        for code, spec in CHANNELS.items():
            channel, _ = Channel.objects.update_or_create(
                code=code,
                defaults={"name": spec["name"], "currency": "BRL", "is_active": True, "config": spec["config"]},
            )
            channels.append(channel)
        return channels

    def seed_demo_user(self, channels: list[Channel]) -> None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = True
        user.is_active = True
        if not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
        user.save()
        # Operator (directives), and enough admin rights to watch orders and directives
        # and edit the catalog.
        perms = Permission.objects.filter(content_type__app_label__in=["omniman", "cafe"])
        user.user_permissions.add(*perms)
        for channel in channels:
            ChannelGrant.objects.get_or_create(user=user, channel=channel)
