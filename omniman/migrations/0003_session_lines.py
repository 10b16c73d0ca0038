import django.db.models.deletion
import django.db.models.functions.comparison
import django.db.models.lookups
from django.db import migrations, models

import omniman.fields


class Migration(migrations.Migration):

    dependencies = [
        ('omniman', '0002_order_items_and_events_by_order_id'),
    ]

    operations = [
        migrations.AddField(
            model_name='session',
            name='line_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='session',
            name='next_position',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='session',
            name='subtotal_q',
            field=models.BigIntegerField(default=0),
        ),
        migrations.CreateModel(
            name='SessionLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('line_id', models.CharField(max_length=64)),
                ('position', models.PositiveIntegerField()),
                ('sku', models.CharField(max_length=64)),
                ('qty', models.CharField(max_length=16)),
                ('unit_price_q', models.BigIntegerField()),
                ('line_total_q', models.BigIntegerField()),
                ('meta', omniman.fields.FastJSONField(blank=True, default=dict)),
                ('session', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='omniman.session')),
            ],
            options={
                'ordering': ('session_id', 'position'),
                'indexes': [models.Index(fields=['session', 'position'], name='omniman_line_session_pos')],
                'constraints': [
                    models.UniqueConstraint(fields=('session', 'line_id'), name='omniman_line_session_line_id'),
                    models.CheckConstraint(condition=django.db.models.lookups.GreaterThan(django.db.models.functions.comparison.Cast('qty', models.DecimalField(decimal_places=3, max_digits=10)), 0), name='omniman_line_qty_gt_0'),
                    models.CheckConstraint(condition=models.Q(('line_total_q__gte', 0), ('unit_price_q__gte', 0)), name='omniman_line_amounts_gte_0'),
                ],
            },
        ),
    ]
