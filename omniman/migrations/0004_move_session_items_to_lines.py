"""Move every session's ``items`` (a JSON list) into SessionLine rows."""

import re

from django.db import migrations

AUTO_ID = re.compile(r"^L([1-9][0-9]{0,8})\Z")


def move_items(apps, schema_editor):
    Session = apps.get_model("omniman", "Session")
    SessionLine = apps.get_model("omniman", "SessionLine")
    db = schema_editor.connection.alias
    batch = []
    sessions = Session.objects.using(db).exclude(items=[]).only("id", "items", "next_line").order_by("pk")
    for session in sessions.iterator(chunk_size=500):
        items = session.items or []
        next_line = session.next_line
        for position, line in enumerate(items):
            batch.append(SessionLine(
                session_id=session.pk, line_id=line["line_id"], position=position, sku=line["sku"],
                qty=line["qty"], unit_price_q=line["unit_price_q"], line_total_q=line["line_total_q"],
                meta=line.get("meta") or {},
            ))
            auto = AUTO_ID.match(line["line_id"])
            if auto is not None:
                next_line = max(next_line, int(auto.group(1)) + 1)
        Session.objects.using(db).filter(pk=session.pk).update(
            line_count=len(items),
            subtotal_q=sum(line["line_total_q"] for line in items),
            next_position=len(items),
            next_line=next_line,
        )
        if len(batch) >= 1000:
            SessionLine.objects.using(db).bulk_create(batch)
            batch = []
    SessionLine.objects.using(db).bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('omniman', '0003_session_lines'),
    ]

    operations = [
        migrations.RunPython(move_items, migrations.RunPython.noop),
    ]
