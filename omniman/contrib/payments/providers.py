"""Payment providers: what a method (``cash``, ``card``) does with money.

A method maps to a provider in ``OMNIMAN_PAYMENTS["METHODS"]``: a dotted path to a
:class:`Provider` subclass, or ``{"path": ..., "options": {...}}`` (the options are
the class's keyword arguments)::

    OMNIMAN_PAYMENTS = {
        "METHODS": {
            "cash": "omniman.contrib.payments.providers.Cash",
            "card": {"path": "omniman.contrib.payments.providers.DemoTerminal",
                     "options": {"decline_above_q": 100000}},
        },
    }

A provider either settles at once (``settles_later = False``: :meth:`Provider.capture`
runs under the order's row lock, so it must not call anything outside the process),
or later (``settles_later = True``: the payment is written ``pending``, and the
``payments.settle`` directive calls :meth:`Provider.capture` outside any lock, then
records its :class:`Settlement`). Refunds follow ``refunds_later`` the same way."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from omniman.contrib.payments.models import Payment, Refund
    from omniman.registry import HandlerContext

DEFAULT_METHODS: dict[str, Any] = {"cash": "omniman.contrib.payments.providers.Cash"}
KNOWN_KEYS = ("METHODS",)


@dataclass(frozen=True)
class Settlement:
    """A provider's answer: ``ok`` (captured, or refund done) or not, its own reference
    for the money moved, and why it failed."""

    ok: bool
    provider_ref: str = ""
    failure: str = ""


class Provider:
    """The base of every provider. ``ctx`` is the directive's context when the work
    runs from ``payments.settle`` (its ``idempotency_key`` is the same on every
    attempt: give it to the gateway), None when it runs at once."""

    #: The payment is written ``pending`` and captured by the ``payments.settle`` directive.
    settles_later = False
    #: Refunds are written ``pending`` and made by the ``payments.settle`` directive.
    refunds_later = False
    #: The method takes ``tendered_q`` (cash: the change is given back).
    takes_tendered = False

    def __init__(self, method: str, **options: Any) -> None:
        if options:
            raise TypeError(f"{type(self).__name__} takes no options; got {sorted(options)}.")
        self.method = method

    def capture(self, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        raise NotImplementedError

    def refund(self, refund: Refund, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        raise NotImplementedError


class Cash(Provider):
    """Money in the drawer: captured at once, change given, refunds done at once."""

    takes_tendered = True

    def capture(self, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        return Settlement(True)

    def refund(self, refund: Refund, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        return Settlement(True)


class DemoTerminal(Provider):
    """A card terminal for demos and tests: the payment waits ``pending`` until the
    ``payments.settle`` directive captures it (the customer taps the card), and
    amounts above ``decline_above_q`` are declined. Its reference is made from the
    directive's idempotency key, so a retried directive gives the same one."""

    settles_later = True
    refunds_later = True

    def __init__(self, method: str, *, decline_above_q: int | None = None) -> None:
        super().__init__(method)
        if decline_above_q is not None and (isinstance(decline_above_q, bool) or not isinstance(decline_above_q, int)
                                            or decline_above_q < 0):
            raise ValueError("decline_above_q must be an integer ≥ 0 or None.")
        self.decline_above_q = decline_above_q

    def capture(self, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        if self.decline_above_q is not None and payment.amount_q + payment.tip_q > self.decline_above_q:
            return Settlement(False, failure="declined by the terminal")
        return Settlement(True, provider_ref=f"demo-{ctx.idempotency_key if ctx else payment.pk}")

    def refund(self, refund: Refund, payment: Payment, ctx: HandlerContext | None) -> Settlement:
        return Settlement(True, provider_ref=f"demo-refund-{ctx.idempotency_key if ctx else refund.pk}")


def raw_settings() -> Any:
    return getattr(settings, "OMNIMAN_PAYMENTS", {})


def method_entries() -> dict[str, Any]:
    raw = raw_settings()
    methods = raw.get("METHODS", DEFAULT_METHODS) if isinstance(raw, dict) else DEFAULT_METHODS
    return methods if isinstance(methods, dict) else {}


def build(method: str, entry: Any) -> Provider:
    """The provider of one ``METHODS`` entry; raises ImportError, TypeError or ValueError."""
    path, options = (entry.get("path"), entry.get("options") or {}) if isinstance(entry, dict) else (entry, {})
    if not isinstance(path, str):
        raise TypeError("give a dotted path, or a dict with 'path' and 'options'.")
    if isinstance(entry, dict) and set(entry) - {"path", "options"}:
        raise TypeError(f"unknown keys {sorted(set(entry) - {'path', 'options'})}; known: path, options.")
    if not isinstance(options, dict):
        raise TypeError("'options' must be a dict.")
    cls = import_string(path)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{path} is not a subclass of omniman.contrib.payments.providers.Provider.")
    return cls(method, **options)


@cache
def providers() -> dict[str, Provider]:
    """Every configured method's provider, built once (again after a settings change)."""
    return {method: build(method, entry) for method, entry in method_entries().items()}


def provider(method: str) -> Provider:
    return providers()[method]


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "OMNIMAN_PAYMENTS":
        providers.cache_clear()


setting_changed.connect(_reset, dispatch_uid="omniman.contrib.payments.providers.reset")
