# shop/__init__.py: load the Celery app with the project, so that the web processes
# send directives through it (and not through Celery's default app).
from .celery import app as celery_app

__all__ = ["celery_app"]
