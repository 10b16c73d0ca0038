"""Order extensions: how an optional app (``omniman.contrib.payments``) adds to orders
without the kernel or the API knowing it.

An app registers one :class:`OrderExtension` from its ``AppConfig.ready()``
(:func:`register`). The kernel and the API then, for every registered extension:

* read ``related`` with every order they load (``select_related``: a one-to-one row
  beside the order costs a join, never a statement of its own);
* add what ``fields(order)`` returns to the order's JSON (``field_schemas`` documents
  each field in the OpenAPI document);
* accept each of ``filters`` as a query parameter of ``orders/``;
* call ``guard(order, to)`` in :func:`~omniman.services.orders.transition_order`,
  under the order's lock, after the channel's flow allowed the move: it raises an
  :class:`~omniman.exceptions.OmnimanError` to refuse it;
* accept ``config_keys`` in a channel's config (``config_topic_keys`` among them name
  lists of directive topics, which the ``omniman.W101`` check covers);
* mount the routes of the ``api_urls`` module (dotted path) in ``omniman_api.urls``,
  before its catch-all.

Nothing here is called when no extension is registered: an order costs what it
cost before. An extension that changes what ``fields`` gives must bump the order's
``version`` (:func:`omniman.services.orders.touch_order`), so its ETag changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from omniman.models import Order


@dataclass(frozen=True)
class OrderFilter:
    """A query parameter of ``orders/``: ``apply(qs, value)`` narrows the queryset (a
    bad value raises ``ValidationError`` at ``/<name>``); ``schema`` is the JSON schema
    of the value in the OpenAPI document."""

    apply: Callable[[QuerySet[Any], str], QuerySet[Any]]
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class OrderExtension:
    name: str
    related: tuple[str, ...] = ()
    fields: Callable[[Order], dict[str, Any]] | None = None
    field_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    filters: Mapping[str, OrderFilter] = field(default_factory=dict)
    guard: Callable[[Order, str], None] | None = None
    #: key -> (check(value) -> bool, description of the expected value)
    config_keys: Mapping[str, tuple[Callable[[Any], bool], str]] = field(default_factory=dict)
    config_topic_keys: tuple[str, ...] = ()
    api_urls: str | None = None


_extensions: dict[str, OrderExtension] = {}


def register(extension: OrderExtension) -> OrderExtension:
    """Register ``extension`` (again with the same value: nothing happens). Another
    extension of that name, or a config key or filter another one has, is an error."""
    existing = _extensions.get(extension.name)
    if existing is not None:
        if existing == extension:
            return extension
        raise ValueError(f"An order extension named {extension.name!r} is already registered.")
    for other in _extensions.values():
        clash = (set(other.config_keys) & set(extension.config_keys)) | (set(other.filters) & set(extension.filters))
        if clash:
            raise ValueError(f"Order extension {extension.name!r} clashes with {other.name!r} on {sorted(clash)}.")
    _extensions[extension.name] = extension
    return extension


def unregister(name: str) -> OrderExtension | None:
    """Remove an extension (tests measure the kernel without one)."""
    return _extensions.pop(name, None)


def extensions() -> tuple[OrderExtension, ...]:
    return tuple(_extensions.values())


def order_related() -> tuple[str, ...]:
    return tuple(name for ext in _extensions.values() for name in ext.related)


def order_fields(order: Order) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ext in _extensions.values():
        if ext.fields is not None:
            out.update(ext.fields(order))
    return out


def order_filters() -> dict[str, OrderFilter]:
    return {name: f for ext in _extensions.values() for name, f in ext.filters.items()}


def check_transition(order: Order, to: str) -> None:
    for ext in _extensions.values():
        if ext.guard is not None:
            ext.guard(order, to)


def config_keys() -> dict[str, tuple[Callable[[Any], bool], str]]:
    return {key: spec for ext in _extensions.values() for key, spec in ext.config_keys.items()}


def config_topic_keys() -> tuple[str, ...]:
    return tuple(key for ext in _extensions.values() for key in ext.config_topic_keys)


def api_urls() -> tuple[str, ...]:
    return tuple(ext.api_urls for ext in _extensions.values() if ext.api_urls)
