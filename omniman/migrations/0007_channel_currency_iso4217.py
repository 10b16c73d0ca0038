"""Channel.currency: an ISO 4217 code, also enforced by the database.

Existing lowercase codes are upper-cased; any other invalid code stops the migration
with the channels to fix, rather than a bare constraint violation."""

import re

import django.core.validators
from django.db import migrations, models


def fix_currencies(apps, schema_editor):
    Channel = apps.get_model("omniman", "Channel")
    db = schema_editor.connection.alias
    bad = []
    for pk, code, currency in Channel.objects.using(db).values_list("pk", "code", "currency"):
        if re.fullmatch(r"[A-Z]{3}", currency or ""):
            continue
        if re.fullmatch(r"[A-Za-z]{3}", currency or ""):
            Channel.objects.using(db).filter(pk=pk).update(currency=currency.upper())
        else:
            bad.append(f"{code}: {currency!r}")
    if bad:
        raise RuntimeError(
            "Channel currencies must be ISO 4217 codes (three capital letters); fix these channels, "
            "then migrate again: " + ", ".join(bad)
        )


class Migration(migrations.Migration):

    dependencies = [
        ("omniman", "0006_directive_dispatched_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="channel",
            name="currency",
            field=models.CharField(default="BRL", max_length=3, validators=[django.core.validators.RegexValidator(
                "\\A[A-Z]{3}\\Z", "An ISO 4217 code, three capital letters (e.g. 'EUR').")]),
        ),
        migrations.RunPython(fix_currencies, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="channel",
            constraint=models.CheckConstraint(condition=models.Q(("currency__regex", "\\A[A-Z]{3}\\Z")),
                                              name="omniman_channel_currency_iso4217"),
        ),
    ]
