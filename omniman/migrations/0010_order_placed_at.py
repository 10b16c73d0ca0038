"""Orders keep when they were placed: an import's ``placed_at``, else the commit's time.
Orders already stored were placed when they were created."""

from django.db import migrations, models


def placed_when_created(apps, schema_editor):
    Order = apps.get_model("omniman", "Order")
    Order.objects.filter(placed_at__isnull=True).update(placed_at=models.F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("omniman", "0009_line_options_adjustments"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="placed_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(placed_when_created, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="order",
            name="placed_at",
            field=models.DateTimeField(),
        ),
    ]
