"""omniman's settings: one ``OMNIMAN`` dict in the host's settings, merged key by key
over the defaults of :data:`SETTINGS`, read when used and re-read on ``setting_changed``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Setting:
    """One key of ``OMNIMAN``: its default, the types a host may give it, and whether
    it must be greater than 0 (a number that makes no sense at zero or below)."""

    default: Any
    types: type | tuple[type, ...]
    positive: bool = False


SETTINGS: dict[str, Setting] = {
    # Op engine limits.
    "MAX_OPS_PER_MODIFY": Setting(100, int, positive=True),
    "MAX_LINES_PER_SESSION": Setting(500, int, positive=True),
    "MAX_DATA_BYTES": Setting(64 * 1024, int, positive=True),
    # HTTP body limit, enforced by omniman_api before parsing (413 above it).
    "MAX_BODY_BYTES": Setting(1024 * 1024, int, positive=True),
    # Sessions without a channel TTL expire after this many minutes.
    "DEFAULT_SESSION_TTL_MINUTES": Setting(24 * 60, int, positive=True),
    # Idempotency keys are kept this long, then purged.
    "IDEMPOTENCY_TTL_SECONDS": Setting(24 * 60 * 60, int, positive=True),
    # Abandoned (or expired) sessions are deleted by ``omniman_purge_sessions`` after this many days.
    "SESSION_RETENTION_DAYS": Setting(30, int, positive=True),
    # ``omniman_purge_directives`` deletes directives done longer ago than this.
    "DIRECTIVE_RETENTION_DAYS": Setting(30, int, positive=True),
    # An import's ``placed_at`` is at most this far in the future (clocks drift) ...
    "PLACED_AT_MAX_FUTURE_SECONDS": Setting(5 * 60, int, positive=True),
    # ... and at most this old.
    "PLACED_AT_MAX_AGE_DAYS": Setting(30, int, positive=True),
    # Upper bound for ``orders/stream/?timeout=``.
    "STREAM_MAX_TIMEOUT_SECONDS": Setting(25, (int, float), positive=True),
    # Dotted path to the catalog used by ``internal`` pricing channels.
    "PRICING_BACKEND": Setting(None, (str, type(None))),
    # Registry entries given by dotted path.
    "HANDLERS": Setting({}, dict),
    "MODIFIERS": Setting([], (list, tuple)),
    "VALIDATORS": Setting([], (list, tuple)),
    "ISSUE_RESOLVERS": Setting({}, dict),
    # Custom ops: dotted paths to omniman.ops.CustomOp objects (omniman.registry.define_op).
    "OPS": Setting([], (list, tuple)),
    # Import ``omniman_handlers`` from every installed app at start-up.
    "AUTODISCOVER": Setting(True, bool),
    # Directives: "inline" runs them in process after commit; "celery" sends them to Celery.
    "DIRECTIVE_BACKEND": Setting("inline", str),
    "DIRECTIVE_MAX_ATTEMPTS": Setting(5, int, positive=True),
    "DIRECTIVE_BACKOFF_BASE_SECONDS": Setting(2.0, (int, float)),
    "DIRECTIVE_BACKOFF_MAX_SECONDS": Setting(600.0, (int, float)),
    "DIRECTIVE_LEASE_SECONDS": Setting(300, (int, float), positive=True),
    "DIRECTIVE_QUEUE": Setting("omniman", str),
    # A queued, due directive that was already sent is sent again by the reaper after this long.
    "DIRECTIVE_REDISPATCH_AFTER_SECONDS": Setting(60.0, (int, float)),
    # After a failed publish, this process leaves new directives to the reaper for this long.
    "DIRECTIVE_DISPATCH_PAUSE_SECONDS": Setting(5.0, (int, float)),
    # How often the beat task (and ``omniman_dispatch_directives --loop``) runs the reaper.
    "DIRECTIVE_REAPER_INTERVAL_SECONDS": Setting(5.0, (int, float)),
    # Most directives one Celery message carries (a commit's directives go together).
    "DIRECTIVE_BATCH_SIZE": Setting(8, int, positive=True),
    # Most directives one reaper pass dispatches.
    "DIRECTIVE_REAPER_BATCH": Setting(1000, int),
    # How often the beat task ``omniman.housekeeping`` expires and purges.
    "HOUSEKEEPING_INTERVAL_SECONDS": Setting(3600.0, (int, float), positive=True),
    # PostgreSQL: a worker's claim, and the outcome of a handler that wrote nothing, commit
    # without waiting for the WAL flush (a database crash can only make them run again).
    "DIRECTIVE_ASYNC_COMMIT": Setting(True, bool),
}

DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}


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
        expected = SETTINGS[key].types
        numeric = expected in (int, (int, float))
        if (isinstance(value, bool) and numeric) or not isinstance(value, expected):
            found.append((key, f"OMNIMAN[{key!r}] has the wrong type {type(value).__name__}."))
        elif SETTINGS[key].positive and isinstance(value, (int, float)) and value <= 0:
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
