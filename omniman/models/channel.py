from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.functional import cached_property

from omniman import extensions
from omniman.fields import FastJSONField
from omniman.validators import ident_validator

logger = logging.getLogger(__name__)

PRICING_POLICIES = ("internal", "external")
EDIT_POLICIES = ("open", "locked")
TICKET_NUMBERS = ("daily", "none")
#: ``business_day_starts_at``: a local time of day, ``HH:MM`` on a 24-hour clock.
DAY_START_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\Z")


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _is_flow(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and _is_str_list(v) for k, v in value.items()
    )


# key -> (check, description of the expected type)
CONFIG_KEYS: dict[str, tuple[Any, str]] = {
    "pricing_policy": (lambda v: v in PRICING_POLICIES, "'internal' or 'external'"),
    "edit_policy": (lambda v: v in EDIT_POLICIES, "'open' or 'locked'"),
    "require_if_match": (lambda v: isinstance(v, bool), "a boolean"),
    "session_ttl_minutes": (
        lambda v: v is None or isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "a positive integer or null",
    ),
    "checks": (
        lambda v: isinstance(v, dict) and all(isinstance(t, str) and t for t in v.values()),
        "an object mapping check codes to directive topics",
    ),
    "required_checks_on_commit": (_is_str_list, "a list of check codes"),
    "post_commit_directives": (_is_str_list, "a list of directive topics"),
    "status_directives": (_is_flow, "an object mapping a status to a list of directive topics"),
    "session_end_directives": (_is_str_list, "a list of directive topics"),
    "initial_status": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "order_flow": (_is_flow, "an object mapping a status to a list of next statuses"),
    "external_ref_path": (lambda v: v is None or isinstance(v, str) and bool(v), "a dotted path into data, or null"),
    "modifiers": (_is_str_list, "a list of registered modifier names"),
    "tax_inclusive": (lambda v: isinstance(v, bool), "a boolean"),
    "ticket_numbers": (lambda v: v in TICKET_NUMBERS, "'daily' or 'none'"),
    "business_day_starts_at": (
        lambda v: isinstance(v, str) and bool(DAY_START_RE.match(v)), "a time of day as 'HH:MM' (00:00 to 23:59)"
    ),
}


@dataclass(frozen=True)
class ChannelConfig:
    """A channel's validated config with its defaults filled in."""

    pricing_policy: str = "external"
    edit_policy: str = "open"
    require_if_match: bool = False
    session_ttl_minutes: int | None = None
    checks: dict[str, str] = field(default_factory=dict)
    required_checks_on_commit: tuple[str, ...] = ()
    post_commit_directives: tuple[str, ...] = ()
    #: Status -> topics enqueued when an order enters that status.
    status_directives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Topics enqueued when a session is abandoned or expires.
    session_end_directives: tuple[str, ...] = ()
    initial_status: str = "new"
    order_flow: dict[str, tuple[str, ...]] = field(default_factory=dict)
    external_ref_path: str | None = None
    modifiers: tuple[str, ...] = ()
    tax_inclusive: bool = False
    ticket_numbers: str = "daily"
    business_day_starts_at: str = "04:00"
    #: The keys order extensions add (:mod:`omniman.extensions`), as stored.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ChannelConfig:
        values = {k: v for k, v in raw.items() if k in CONFIG_KEYS}
        values["extra"] = {k: v for k, v in raw.items() if k not in CONFIG_KEYS}
        for key in ("required_checks_on_commit", "post_commit_directives", "session_end_directives", "modifiers"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("order_flow", "status_directives"):
            if key in values:
                values[key] = {k: tuple(v) for k, v in values[key].items()}
        return cls(**values)

    def allowed_next(self, status: str) -> tuple[str, ...]:
        return self.order_flow.get(status, ())

    @property
    def day_starts_at(self) -> time:
        """``business_day_starts_at`` as a time of day."""
        hours, minutes = self.business_day_starts_at.split(":")
        return time(int(hours), int(minutes))


def config_errors(value: Any) -> list[str]:
    """Every problem of a channel config: unknown keys, wrong types, inconsistencies."""
    if not isinstance(value, dict):
        return ["The config must be a JSON object."]
    errors: list[str] = []
    known = {**extensions.config_keys(), **CONFIG_KEYS}
    for key, item in value.items():
        if key not in known:
            errors.append(f"Unknown key {key!r}; known keys: {', '.join(sorted(known))}.")
            continue
        check, expected = known[key]
        if not check(item):
            errors.append(f"{key!r} must be {expected}.")
    if errors:
        return errors
    checks = value.get("checks", {})
    for code in value.get("required_checks_on_commit", []):
        if code not in checks:
            errors.append(f"required check {code!r} is not declared in 'checks'.")
    flow = value.get("order_flow") or {}
    initial = value.get("initial_status", "new")
    if flow and initial not in flow:
        errors.append(f"initial_status {initial!r} is not a status of 'order_flow'.")
    if flow:
        statuses = set(flow) | {status for nexts in flow.values() for status in nexts}
        for status in value.get("status_directives", {}):
            if status not in statuses:
                errors.append(f"'status_directives' names {status!r}, which is not a status of 'order_flow'.")
    return errors


def config_topics(value: Any) -> list[tuple[str, str]]:
    """Every directive topic a (valid) channel config names, as ``(where, topic)``:
    ``where`` is ``post_commit_directives``, ``session_end_directives``,
    ``status_directives.<status>`` or ``checks.<code>``."""
    if not isinstance(value, dict) or config_errors(value):
        return []
    found = [(f"checks.{code}", topic) for code, topic in value.get("checks", {}).items()]
    found += [("post_commit_directives", topic) for topic in value.get("post_commit_directives", [])]
    for status, topics in value.get("status_directives", {}).items():
        found += [(f"status_directives.{status}", topic) for topic in topics]
    found += [("session_end_directives", topic) for topic in value.get("session_end_directives", [])]
    for key in extensions.config_topic_keys():
        found += [(key, topic) for topic in value.get(key, [])]
    return found


def unhandled_topics(value: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """The ``(where, topic)`` of a channel config whose topic has no handler in this
    process, and the topics that have one."""
    from omniman.registry import registry

    known = registry.topics()
    return [(where, topic) for where, topic in config_topics(value) if topic not in known], known


def validate_config(value: Any) -> None:
    """The field validator: ``ValidationError`` listing every problem of the config."""
    errors = config_errors(value)
    if errors:
        raise ValidationError(errors)


#: ISO 4217 alphabetic codes: three capital letters (``\A``/``\Z``: Python's ``$``
#: would let a trailing newline through; PostgreSQL reads both the same way).
CURRENCY_RE = r"\A[A-Z]{3}\Z"
currency_validator = RegexValidator(CURRENCY_RE, "An ISO 4217 code, three capital letters (e.g. 'EUR').")


class Channel(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[ident_validator])
    name = models.CharField(max_length=128)
    currency = models.CharField(max_length=3, default="BRL", validators=[currency_validator])
    is_active = models.BooleanField(default=True)
    config = FastJSONField(default=dict, blank=True, validators=[validate_config])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("code",)
        permissions = [("operate", "Can operate omniman (directives, retries)")]
        constraints = [
            models.CheckConstraint(condition=models.Q(currency__regex=CURRENCY_RE),
                                   name="omniman_channel_currency_iso4217"),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Checked on every save, as full_clean would: a channel with a bad config or
        # currency would break every session of it (the database also refuses the currency).
        errors: dict[str, list[str]] = {}
        try:
            currency_validator(self.currency)
        except ValidationError as exc:
            errors["currency"] = exc.messages
        if config_errors(self.config):
            errors["config"] = config_errors(self.config)
        if errors:
            raise ValidationError(errors)
        self.__dict__.pop("conf", None)
        super().save(*args, **kwargs)
        try:
            missing, known = unhandled_topics(self.config)
        except Exception:  # OMNIMAN names a handler that does not import: omniman.E003
            missing, known = [], []
        for where, topic in missing:
            # Not an error: the handler may be registered by a later deploy; until
            # then such directives are retried and fail (see the omniman.W101 check).
            logger.warning(
                "channel %r names topic %r (%s) but no handler is registered for it; topics with a handler: %s",
                self.code, topic, where, ", ".join(known) or "none",
            )

    @cached_property
    def conf(self) -> ChannelConfig:
        return ChannelConfig.from_dict(self.config or {})


class ChannelGrant(models.Model):
    """Gives one user access to one channel through the API."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="omniman_grants"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="grants")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "channel"], name="omniman_grant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.channel}"
