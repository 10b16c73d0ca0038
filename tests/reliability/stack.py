"""Settings and a handler for the example project as the fault tests run it: the café's
settings plus one directive handler that records nothing but its own success.

    DJANGO_SETTINGS_MODULE=tests.reliability.stack   (with example_project on the path)
"""

from __future__ import annotations

from typing import Any

from config.settings import *  # noqa: F403
from config.settings import OMNIMAN as _CAFE

OMNIMAN = {**_CAFE, "HANDLERS": {**_CAFE.get("HANDLERS", {}), "reliability.ping": "tests.reliability.stack.ping"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}


def ping(directive: Any, ctx: Any) -> None:
    """Succeeds: a directive that reaches ``done`` was delivered and run."""
