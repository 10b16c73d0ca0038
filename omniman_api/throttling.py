"""Throttling is the host's choice: the API applies ``DEFAULT_THROTTLE_CLASSES`` from
``REST_FRAMEWORK`` (read per request, so a settings change applies at once), and
answers 429 ``throttled`` with ``Retry-After``.

:class:`OmnimanUserThrottle` limits each user (or client address) by the scope
``omniman`` in ``DEFAULT_THROTTLE_RATES``, e.g. ``{"omniman": "600/min"}``."""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class OmnimanUserThrottle(UserRateThrottle):
    scope = "omniman"

    def get_rate(self) -> Any:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
