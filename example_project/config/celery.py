"""The Celery app ``config``: ``celery --workdir example_project -A config worker``.

The worker must consume omniman's queue (``OMNIMAN["DIRECTIVE_QUEUE"]``, default
``omniman``) as well as Celery's default queue, where beat sends the reaper:
``celery --workdir example_project -A config worker -Q omniman,celery``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
