"""An ``external_ref`` is unique in its channel. Duplicates stored before (the same
marketplace order imported twice) are settled first: the oldest order keeps the ref,
each later one has it cleared and gets an ``order.external_ref_cleared`` event that
names the ref and the order that kept it (its ``data`` still holds what was sent)."""

import logging

from django.db import migrations, models
from django.db.models import Count

logger = logging.getLogger("omniman.migrations")


def settle_duplicates(apps, schema_editor):
    Order = apps.get_model("omniman", "Order")
    OrderEvent = apps.get_model("omniman", "OrderEvent")
    groups = (
        Order.objects.exclude(external_ref="")
        .values("channel_id", "external_ref")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("channel_id", "external_ref")
    )
    cleared = 0
    for group in groups.iterator():
        rows = list(
            Order.objects.filter(channel_id=group["channel_id"], external_ref=group["external_ref"])
            .order_by("id")
            .values_list("id", "ref")
        )
        (_, kept), later = rows[0], [pk for pk, _ in rows[1:]]
        OrderEvent.objects.bulk_create(
            OrderEvent(
                order_id=pk,
                type="order.external_ref_cleared",
                actor="migration",
                payload={"external_ref": group["external_ref"], "kept_by": kept},
            )
            for pk in later
        )
        cleared += Order.objects.filter(pk__in=later).update(external_ref="")
    if cleared:
        logger.warning("cleared the external_ref of %s duplicate orders (see their events)", cleared)


class Migration(migrations.Migration):

    dependencies = [
        ("omniman", "0010_order_placed_at"),
    ]

    operations = [
        migrations.RunPython(settle_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_ref", ""), _negated=True),
                fields=("channel", "external_ref"),
                name="omniman_order_channel_external_ref",
            ),
        ),
    ]
