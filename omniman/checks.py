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
from omniman.exceptions import HandlerError
from omniman.registry import HandlerOptions


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
        try:
            paths.append(HandlerOptions.from_setting(topic, entry)[0])
        except HandlerError as exc:
            errors.append(Error(str(exc), id="omniman.E004"))
    paths += list(conf.get("ISSUE_RESOLVERS").values())
    paths += [p["path"] if isinstance(p, dict) else p for p in conf.get("VALIDATORS")]
    paths += list(conf.get("MODIFIERS"))
    for path in paths:
        try:
            conf.import_path(path)
        except ImportError as exc:
            errors.append(Error(f"Cannot import {path!r}: {exc}", id="omniman.E003"))
    return errors

