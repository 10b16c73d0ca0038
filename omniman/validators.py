"""The identifier rule, in one place: channel codes, session keys, SKUs, line ids,
order refs and idempotency keys are 1 to 64 characters of ``[A-Za-z0-9._:-]``.

The kernel validates with :data:`IDENT_RE`, the models with :data:`ident_validator`,
and the API builds its URL patterns and its OpenAPI ``pattern`` from
:data:`IDENT_PATTERN`."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator

#: The rule without anchors, to embed in a URL pattern or an OpenAPI ``pattern``.
IDENT_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
#: The whole string must match (``\Z``: a trailing newline does not).
IDENT_RE = re.compile(rf"^{IDENT_PATTERN}\Z")
IDENT_RULE = "1 to 64 characters of [A-Za-z0-9._:-]."

ident_validator = RegexValidator(IDENT_RE, IDENT_RULE)
