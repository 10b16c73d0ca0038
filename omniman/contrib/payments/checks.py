"""System checks on ``OMNIMAN_PAYMENTS`` (ids never change meaning):

- ``omniman_payments.E001``: ``OMNIMAN_PAYMENTS`` is not a dict, has an unknown key, or
  ``METHODS`` is not a dict of method names;
- ``omniman_payments.E002``: a method's provider does not import, is not a
  ``Provider`` subclass, or refuses its options.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error

from omniman.contrib.payments.providers import KNOWN_KEYS, build, method_entries, raw_settings
from omniman.validators import IDENT_RE

HINT = "See the payments guide in omniman's docs (OMNIMAN_PAYMENTS)."


def check_methods(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    raw = raw_settings()
    if not isinstance(raw, dict):
        return [Error("OMNIMAN_PAYMENTS must be a dict.", hint=HINT, id="omniman_payments.E001")]
    errors = [Error(f"Unknown key {key!r} in OMNIMAN_PAYMENTS; known: {', '.join(KNOWN_KEYS)}.", hint=HINT,
                    id="omniman_payments.E001") for key in raw if key not in KNOWN_KEYS]
    if not isinstance(raw.get("METHODS", {}), dict):
        return [*errors, Error("OMNIMAN_PAYMENTS['METHODS'] must be a dict of method → provider.", hint=HINT,
                               id="omniman_payments.E001")]
    for method, entry in method_entries().items():
        if not isinstance(method, str) or not IDENT_RE.match(method):
            errors.append(Error(f"Payment method {method!r} must be 1 to 64 characters of [A-Za-z0-9._:-].",
                                hint=HINT, id="omniman_payments.E001"))
            continue
        try:
            build(method, entry)
        except (ImportError, TypeError, ValueError) as exc:
            errors.append(Error(f"Payment method {method!r}: {exc}", hint=HINT, id="omniman_payments.E002"))
    return errors
