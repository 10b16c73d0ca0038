"""System checks on how the API authenticates (ids never change meaning):

- ``omniman.E101``: ``TokenAuthentication`` is configured but ``rest_framework.authtoken``
  is not in ``INSTALLED_APPS`` (every request with a token would be a 500);
- ``omniman.E102``: no authentication class the API can use: the list is empty (every
  request is anonymous, so every endpoint but ``health/`` and ``schema/`` answers 403)
  or a class does not import.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import Error

SETTING = "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']"


def check_authentication(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.settings import api_settings

    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError as exc:
        return [Error(
            f"The API has no authentication class it can use: {exc}",
            hint=f"Fix the dotted paths in {SETTING}.",
            id="omniman.E102",
        )]
    if not classes:
        return [Error(
            f"The API has no authentication class it can use: {SETTING} is empty, so every "
            "request is anonymous and refused.",
            hint=f"Set {SETTING}, e.g. to ['rest_framework.authentication.TokenAuthentication', "
                 "'rest_framework.authentication.SessionAuthentication'].",
            id="omniman.E102",
        )]
    errors: list[Error] = []
    for cls in classes:
        uses_token_model = isinstance(cls, type) and issubclass(cls, TokenAuthentication) and cls.model is None
        if uses_token_model and isinstance(cls, type) and not apps.is_installed("rest_framework.authtoken"):
            errors.append(Error(
                f"{cls.__module__}.{cls.__qualname__} is in {SETTING} but 'rest_framework.authtoken' "
                "is not in INSTALLED_APPS: every request that sends a token would fail with a 500.",
                hint="Add 'rest_framework.authtoken' to INSTALLED_APPS and run migrate, or remove the class.",
                id="omniman.E101",
            ))
    return errors
