"""Directive.dispatched_at: the last dispatch, which updated_at used to stand for.

A queued row whose updated_at was after its available_at had been sent; the others
are left null, so the next reaper pass sends them (a duplicate message is harmless)."""

from django.db import migrations, models
from django.db.models import F


def carry_over(apps, schema_editor):
    Directive = apps.get_model("omniman", "Directive")
    db = schema_editor.connection.alias
    Directive.objects.using(db).filter(status="queued", updated_at__gt=F("available_at")).update(
        dispatched_at=F("updated_at")
    )


class Migration(migrations.Migration):

    dependencies = [
        ("omniman", "0005_remove_session_items"),
    ]

    operations = [
        migrations.AddField(
            model_name="directive",
            name="dispatched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop, elidable=True),
    ]
