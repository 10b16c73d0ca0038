"""Ticket numbers: an order's ``number`` and ``business_day``, and the counter row per
channel and business day that hands the numbers out. Orders stored before have
neither (they were never numbered)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("omniman", "0012_stream_by_channel"),
    ]

    operations = [
        migrations.CreateModel(
            name="TicketCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("business_day", models.DateField()),
                ("last", models.PositiveIntegerField(default=0)),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ticket_counters",
                        to="omniman.channel",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("channel", "business_day"), name="omniman_ticket_counter_unique"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="order",
            name="number",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="business_day",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                condition=models.Q(("number__isnull", False)),
                fields=("business_day", "number", "channel"),
                name="omniman_order_day_number",
            ),
        ),
    ]
