"""Stream positions per channel: ``Order.channel_seq`` (1, 2, 3... in each channel)
replaces the installation-wide ``stream_seq``, so commits on different channels no
longer queue behind one lock. Existing orders are numbered in each channel in the
order of their old position; the commit event is renamed ``order.committed``."""

from django.db import migrations, models

BATCH = 1000


def number_by_channel(apps, schema_editor):
    Order = apps.get_model("omniman", "Order")
    last: dict[int, int] = {}
    batch = []
    rows = Order.objects.filter(stream_seq__isnull=False).order_by("stream_seq").only("id", "channel_id")
    for order in rows.iterator(chunk_size=BATCH):
        seq = last.get(order.channel_id, 0) + 1
        last[order.channel_id] = seq
        order.channel_seq = seq
        batch.append(order)
        if len(batch) >= BATCH:
            Order.objects.bulk_update(batch, ["channel_seq"])
            batch = []
    if batch:
        Order.objects.bulk_update(batch, ["channel_seq"])


def restore_global(apps, schema_editor):
    Order = apps.get_model("omniman", "Order")
    batch = []
    rows = Order.objects.filter(channel_seq__isnull=False).order_by("id").only("id")
    for seq, order in enumerate(rows.iterator(chunk_size=BATCH), start=1):
        order.stream_seq = seq
        batch.append(order)
        if len(batch) >= BATCH:
            Order.objects.bulk_update(batch, ["stream_seq"])
            batch = []
    if batch:
        Order.objects.bulk_update(batch, ["stream_seq"])


def rename_commit_event(apps, schema_editor):
    apps.get_model("omniman", "OrderEvent").objects.filter(type="order.created").update(type="order.committed")


def restore_commit_event(apps, schema_editor):
    apps.get_model("omniman", "OrderEvent").objects.filter(type="order.committed").update(type="order.created")


class Migration(migrations.Migration):
    dependencies = [
        ("omniman", "0011_order_external_ref_unique"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="channel_seq",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(number_by_channel, restore_global, elidable=True),
        migrations.RemoveField(model_name="order", name="stream_seq"),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(fields=("channel", "channel_seq"), name="omniman_order_channel_seq"),
        ),
        migrations.RunPython(rename_commit_event, restore_commit_event, elidable=True),
    ]
