from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('omniman', '0004_move_session_items_to_lines'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='session',
            name='items',
        ),
    ]
