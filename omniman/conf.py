"""omniman's settings: one ``OMNIMAN`` dict in the host's settings, merged key by key
over :data:`DEFAULTS`, read when used and re-read on ``setting_changed``."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Op engine limits.
    "MAX_OPS_PER_MODIFY": 100,
    "MAX_LINES_PER_SESSION": 500,
    "MAX_DATA_BYTES": 64 * 1024,
    # HTTP body limit, enforced by omniman_api before parsing (413 above it).
    "MAX_BODY_BYTES": 1024 * 1024,
    # Sessions without a channel TTL expire after this many minutes.
    "DEFAULT_SESSION_TTL_MINUTES": 24 * 60,
    # Idempotency keys are kept this long, then purged.
    "IDEMPOTENCY_TTL_SECONDS": 24 * 60 * 60,
    # Abandoned (or expired) sessions are deleted by ``omniman_purge_sessions`` after this many days.
    "SESSION_RETENTION_DAYS": 30,
    # ``omniman_purge_directives`` deletes directives done longer ago than this.
    "DIRECTIVE_RETENTION_DAYS": 30,
    # Upper bound for ``orders/stream/?timeout=``.
    "STREAM_MAX_TIMEOUT_SECONDS": 25,
    # Dotted path to the catalog used by ``internal`` pricing channels.
    "PRICING_BACKEND": None,
    # Registry entries given by dotted path.
    "HANDLERS": {},
    "MODIFIERS": [],
    "VALIDATORS": [],
    "ISSUE_RESOLVERS": {},
    # Import ``omniman_handlers`` from every installed app at start-up.
    "AUTODISCOVER": True,
    # Directives: "inline" runs them in process after commit; "celery" sends them to Celery.
    "DIRECTIVE_BACKEND": "inline",
    "DIRECTIVE_MAX_ATTEMPTS": 5,
    "DIRECTIVE_BACKOFF_BASE_SECONDS": 2.0,
    "DIRECTIVE_BACKOFF_MAX_SECONDS": 600.0,
    "DIRECTIVE_LEASE_SECONDS": 300,
    "DIRECTIVE_QUEUE": "omniman",
    # A queued, due directive that was already sent is sent again by the reaper after this long.
    "DIRECTIVE_REDISPATCH_AFTER_SECONDS": 60.0,
    # After a failed publish, this process leaves new directives to the reaper for this long.
    "DIRECTIVE_DISPATCH_PAUSE_SECONDS": 5.0,
    # How often the beat task (and ``omniman_dispatch_directives --loop``) runs the reaper.
    "DIRECTIVE_REAPER_INTERVAL_SECONDS": 5.0,
    # Most directives one reaper pass dispatches.
    "DIRECTIVE_REAPER_BATCH": 1000,
    # How often the beat task ``omniman.housekeeping`` expires and purges.
    "HOUSEKEEPING_INTERVAL_SECONDS": 3600.0,
    # PostgreSQL: a worker's claim, and the outcome of a handler that wrote nothing, commit
    # without waiting for the WAL flush (a database crash can only make them run again).
    "DIRECTIVE_ASYNC_COMMIT": True,
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "MAX_OPS_PER_MODIFY": int,
    "MAX_LINES_PER_SESSION": int,
    "MAX_DATA_BYTES": int,
    "MAX_BODY_BYTES": int,
    "DEFAULT_SESSION_TTL_MINUTES": int,
    "IDEMPOTENCY_TTL_SECONDS": int,
    "SESSION_RETENTION_DAYS": int,
    "DIRECTIVE_RETENTION_DAYS": int,
    "STREAM_MAX_TIMEOUT_SECONDS": (int, float),
    "PRICING_BACKEND": (str, type(None)),
    "HANDLERS": dict,
    "MODIFIERS": (list, tuple),
    "VALIDATORS": (list, tuple),
    "ISSUE_RESOLVERS": dict,
    "AUTODISCOVER": bool,
    "DIRECTIVE_BACKEND": str,
    "DIRECTIVE_MAX_ATTEMPTS": int,
    "DIRECTIVE_BACKOFF_BASE_SECONDS": (int, float),
    "DIRECTIVE_BACKOFF_MAX_SECONDS": (int, float),
    "DIRECTIVE_LEASE_SECONDS": (int, float),
    "DIRECTIVE_QUEUE": str,
    "DIRECTIVE_REDISPATCH_AFTER_SECONDS": (int, float),
    "DIRECTIVE_DISPATCH_PAUSE_SECONDS": (int, float),
    "DIRECTIVE_REAPER_INTERVAL_SECONDS": (int, float),
    "DIRECTIVE_REAPER_BATCH": int,
    "HOUSEKEEPING_INTERVAL_SECONDS": (int, float),
    "DIRECTIVE_ASYNC_COMMIT": bool,
}


# Numbers that make no sense at zero or below.
_POSITIVE = frozenset({
    "MAX_OPS_PER_MODIFY",
    "MAX_LINES_PER_SESSION",
    "MAX_DATA_BYTES",
    "MAX_BODY_BYTES",
    "DEFAULT_SESSION_TTL_MINUTES",
    "IDEMPOTENCY_TTL_SECONDS",
    "STREAM_MAX_TIMEOUT_SECONDS",
    "DIRECTIVE_MAX_ATTEMPTS",
    "DIRECTIVE_LEASE_SECONDS",
    "SESSION_RETENTION_DAYS",
    "DIRECTIVE_RETENTION_DAYS",
    "HOUSEKEEPING_INTERVAL_SECONDS",
})


def user_settings() -> dict[str, Any]:
    value = getattr(settings, "OMNIMAN", {})
    return value if isinstance(value, dict) else {}


@cache
def _merged() -> dict[str, Any]:
    merged = dict(DEFAULTS)
    merged.update(user_settings())
    return merged


def get(name: str) -> Any:
    """The value of one setting; an unknown name is a programming error."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown omniman setting {name!r}")
    return _merged()[name]


def problems() -> list[tuple[str, str]]:
    """(key, message) for every unknown key or value of the wrong type."""
    found = []
    raw = getattr(settings, "OMNIMAN", {})
    if not isinstance(raw, dict):
        return [("OMNIMAN", "OMNIMAN must be a dict.")]
    for key, value in raw.items():
        if key not in DEFAULTS:
            found.append((key, f"Unknown key {key!r} in OMNIMAN."))
            continue
        expected = _TYPES[key]
        numeric = expected in (int, (int, float))
        if (isinstance(value, bool) and numeric) or not isinstance(value, expected):
            found.append((key, f"OMNIMAN[{key!r}] has the wrong type {type(value).__name__}."))
        elif key in _POSITIVE and value <= 0:
            found.append((key, f"OMNIMAN[{key!r}] must be greater than 0."))
    backend = raw.get("DIRECTIVE_BACKEND", "inline")
    if backend not in ("inline", "celery"):
        found.append(("DIRECTIVE_BACKEND", "DIRECTIVE_BACKEND must be 'inline' or 'celery'."))
    return found


@cache
def import_path(path: str) -> Any:
    return import_string(path)


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "OMNIMAN":
        _merged.cache_clear()


setting_changed.connect(_reset, dispatch_uid="omniman.conf.reset")
