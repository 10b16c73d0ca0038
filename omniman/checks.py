"""System checks on the ``OMNIMAN`` setting. The ids never change meaning:

- ``omniman.E001``: an unknown key in ``OMNIMAN``;
- ``omniman.E002``: a value of the wrong type or out of range (or ``OMNIMAN`` not a dict);
- ``omniman.E003``: a dotted path (pricing backend, handler, ...) that does not import;
- ``omniman.E004``: a handler given as a dict without a ``path``, or with unknown or
  invalid options.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error

from omniman import conf


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for key, message in conf.problems():
        known = key in conf.DEFAULTS or key == "OMNIMAN"
        errors.append(Error(
            message,
            hint="See the settings reference in omniman's docs." if not known else None,
            id="omniman.E002" if known else "omniman.E001",
        ))
    if errors:
        return errors
    paths = [conf.get("PRICING_BACKEND")] if conf.get("PRICING_BACKEND") else []
    for topic, entry in conf.get("HANDLERS").items():
        if not isinstance(entry, dict):
            paths.append(entry)
            continue
        problem = _handler_entry_problem(topic, entry)
        if problem:
            errors.append(Error(problem, id="omniman.E004"))
        else:
            paths.append(entry["path"])
    paths += list(conf.get("ISSUE_RESOLVERS").values())
    paths += [p["path"] if isinstance(p, dict) else p for p in conf.get("VALIDATORS")]
    paths += list(conf.get("MODIFIERS"))
    for path in paths:
        try:
            conf.import_path(path)
        except ImportError as exc:
            errors.append(Error(f"Cannot import {path!r}: {exc}", id="omniman.E003"))
    return errors


def _handler_entry_problem(topic: str, entry: dict[str, Any]) -> str:
    """What is wrong with ``{"path": ..., "max_attempts": ..., "lease_seconds": ...}``."""
    from omniman.exceptions import HandlerError
    from omniman.registry import HandlerOptions

    where = f"OMNIMAN['HANDLERS'][{topic!r}]"
    if not isinstance(entry.get("path"), str):
        return f"{where} needs a 'path' (the handler's dotted path)."
    unknown = sorted(set(entry) - {"path", "max_attempts", "lease_seconds"})
    if unknown:
        return f"{where} has unknown option(s) {unknown}; known: max_attempts, lease_seconds."
    try:
        HandlerOptions.checked(topic, entry.get("max_attempts"), entry.get("lease_seconds"))
    except HandlerError as exc:
        return f"{where}: {exc}"
    return ""
