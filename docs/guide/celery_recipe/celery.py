# shop/celery.py: the project's Celery app.
import os

from celery import Celery

import omniman.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
# omniman's at-least-once settings, the reaper and housekeeping on beat, and workers
# that consume omniman's queue (OMNIMAN["DIRECTIVE_QUEUE"]) besides the default one.
omniman.celery.configure(app)
app.autodiscover_tasks()
