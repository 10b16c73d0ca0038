"""Token authentication with its lookup prepared once.

:class:`TokenAuthentication` is DRF's own (the ``Authorization: Token <key>`` header,
its keyword, its model, its 401s and their words), but the token's query with its user
is built once per process (:mod:`omniman.models.prepared`) instead of on every request:
on a small request that building costs more than the round trip. Put it where DRF's
class was in ``DEFAULT_AUTHENTICATION_CLASSES``; subclasses may set ``keyword`` and
``model`` as with DRF's."""

from __future__ import annotations

import threading
from typing import Any

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from omniman.models.prepared import Prepared, Slots

_prepared: dict[type[Model], Prepared[Any]] = {}
_lock = threading.Lock()


def _token_query(model: type[Model]) -> Prepared[Any]:
    found = _prepared.get(model)
    if found is None:
        def build(slots: Slots) -> QuerySet[Any]:
            return model._default_manager.select_related("user").filter(key=slots.text("key"))

        with _lock:
            found = _prepared.setdefault(model, Prepared(model, build))
    return found


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``TokenAuthentication``, its token query built once per process."""

    def authenticate_credentials(self, key: Any) -> tuple[Any, Any]:
        model: Any = self.get_model()
        if not isinstance(key, str):  # pragma: no cover - authenticate() decodes the header
            return super().authenticate_credentials(key)
        try:
            token = _token_query(model).get((), {"key": key})
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
