# Append to shop/settings.py, after the quickstart's lines.
import os

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

OMNIMAN["DIRECTIVE_BACKEND"] = "celery"  # directives go to Celery workers after commit
