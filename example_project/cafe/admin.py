from __future__ import annotations

from django.contrib import admin

from cafe.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price_q", "in_stock", "stock")
    list_editable = ("price_q", "in_stock", "stock")
    list_filter = ("in_stock",)
    search_fields = ("sku", "name")
