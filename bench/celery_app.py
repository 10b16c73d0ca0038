"""The bench's Celery app: ``celery -A bench.celery_app worker``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402
from celery import Celery  # noqa: E402

import omniman.celery  # noqa: E402

django.setup()

app = Celery("bench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "bench_raw"
# Keep database connections between tasks (Celery would open one per task).
omniman.celery.keep_database_connections(app)
app.autodiscover_tasks(["omniman", "bench"], related_name="tasks", force=True)
