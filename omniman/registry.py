"""The one place where handlers, modifiers, validators and issue resolvers live.

Register by decorator (``@registry.handler("stock.hold")``), by call
(``registry.register_handler("stock.hold", fn)``) or by dotted path in
``OMNIMAN["HANDLERS"]`` and friends. A duplicate topic is an error.

A handler may carry options for its topic (:class:`HandlerOptions`):
``@registry.handler("export.build", max_attempts=3, lease_seconds=3600)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from omniman import conf
from omniman.exceptions import HandlerError

if TYPE_CHECKING:
    from omniman.models import Channel, Directive
    from omniman.ops import Adjustment, State

logger = logging.getLogger(__name__)

STAGES = ("draft", "commit")


@dataclass(frozen=True)
class HandlerContext:
    """What a handler needs to be idempotent: the directive id, the attempt, a logger."""

    directive_id: int
    attempt: int
    max_attempts: int
    topic: str
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]

    @property
    def idempotency_key(self) -> str:
        """A key to give a gateway: the same on every attempt of this directive."""
        return f"omniman-directive-{self.directive_id}"


@dataclass(frozen=True)
class HandlerOptions:
    """Per-topic overrides of the directive settings; ``None`` keeps the setting."""

    #: ``max_attempts`` of new directives of this topic (``DIRECTIVE_MAX_ATTEMPTS``);
    #: an explicit ``enqueue(..., max_attempts=)`` still wins.
    max_attempts: int | None = None
    #: How long a worker holds a running directive of this topic before the reaper
    #: may queue it again (``DIRECTIVE_LEASE_SECONDS``): longer than the handler's
    #: slowest run, or a second worker starts it while the first is still at it.
    lease_seconds: float | None = None

    @classmethod
    def checked(cls, topic: str, max_attempts: Any = None, lease_seconds: Any = None) -> HandlerOptions:
        def number(value: Any, kinds: tuple[type, ...], minimum: float, name: str) -> Any:
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum or value != value:
                raise HandlerError(f"{name} of the handler for topic {topic!r} must be a number >= {minimum}, "
                                   f"not {value!r}.")
            return value

        return cls(
            max_attempts=number(max_attempts, (int,), 1, "max_attempts"),
            lease_seconds=number(lease_seconds, (int, float), 0.001, "lease_seconds"),
        )

    @classmethod
    def from_setting(cls, topic: str, entry: Any) -> tuple[str, HandlerOptions]:
        """The dotted path and the options of an ``OMNIMAN["HANDLERS"]`` value: a path,
        or ``{"path": ..., "max_attempts": ..., "lease_seconds": ...}``."""
        if not isinstance(entry, dict):
            return entry, NO_OPTIONS
        where = f"OMNIMAN['HANDLERS'][{topic!r}]"
        if not isinstance(entry.get("path"), str):
            raise HandlerError(f"{where} needs a 'path' (the handler's dotted path).")
        unknown = sorted(set(entry) - {"path", *(f.name for f in fields(cls))})
        if unknown:
            raise HandlerError(f"{where} has unknown option(s) {unknown}; known: max_attempts, lease_seconds.")
        return entry["path"], cls.checked(topic, entry.get("max_attempts"), entry.get("lease_seconds"))


NO_OPTIONS = HandlerOptions()


class Handler(Protocol):
    """Runs one directive. Raise ``RetryLater`` to be run again, ``PermanentFailure``
    to fail for good; any other exception is retried with backoff."""

    def __call__(self, directive: Directive, ctx: HandlerContext) -> Any: ...


class Modifier(Protocol):
    """Pure: given ``{"items", "data", "subtotal_q"}`` return the adjustments to add."""

    def __call__(self, view: Mapping[str, Any]) -> Sequence[Adjustment]: ...


@dataclass(frozen=True)
class Problem:
    """What a validator reports: a stable code and a message."""

    code: str
    detail: str


class Validator(Protocol):
    """Pure: return the problems of ``state`` for ``channel`` at ``stage``
    (``draft``: the modify is refused; ``commit``: the commit is blocked)."""

    def __call__(self, *, channel: Channel, state: State, stage: str) -> Iterable[Problem]: ...


class IssueResolver(Protocol):
    """Return the raw ops that apply ``action_id`` of ``issue`` (a dict as stored)."""

    def __call__(self, *, channel: Channel, issue: Mapping[str, Any], action_id: str) -> list[dict[str, Any]]: ...


class PricingBackend(Protocol):
    """The catalog of ``internal`` pricing channels: price in minor units by sku;
    an unknown sku is left out of the answer."""

    def prices(self, channel: Channel, skus: set[str]) -> Mapping[str, int]: ...


class Registry:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.handler_options: dict[str, HandlerOptions] = {}
        self.modifiers: dict[str, Modifier] = {}
        self.validators: list[tuple[str, Validator]] = []
        self.resolvers: dict[str, IssueResolver] = {}
        self._settings_loaded = False

    # -- handlers ----------------------------------------------------------
    def register_handler(
        self, topic: str, fn: Handler, *, max_attempts: int | None = None, lease_seconds: float | None = None
    ) -> Handler:
        """Register ``fn`` for ``topic``, with that topic's :class:`HandlerOptions`.

        Registering the same function again with the same options does nothing
        (an app imported twice); anything else for a known topic is an error."""
        options = HandlerOptions.checked(topic, max_attempts, lease_seconds)
        existing = self.handlers.get(topic)
        if existing is not None and (existing is not fn or self.handler_options.get(topic, NO_OPTIONS) != options):
            raise HandlerError(f"A handler for topic {topic!r} is already registered: {existing!r}.")
        self.handlers[topic] = fn
        if options != NO_OPTIONS:
            self.handler_options[topic] = options
        return fn

    def handler(
        self, topic: str, *, max_attempts: int | None = None, lease_seconds: float | None = None
    ) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            return self.register_handler(topic, fn, max_attempts=max_attempts, lease_seconds=lease_seconds)

        return decorate

    def get_handler(self, topic: str) -> Handler | None:
        self.load_settings()
        return self.handlers.get(topic)

    def options_for(self, topic: str) -> HandlerOptions:
        """The options registered with ``topic``'s handler (all ``None`` when none)."""
        self.load_settings()
        return self.handler_options.get(topic, NO_OPTIONS)

    # -- modifiers ---------------------------------------------------------
    def register_modifier(self, name: str, fn: Modifier) -> Modifier:
        if name in self.modifiers and self.modifiers[name] is not fn:
            raise HandlerError(f"A modifier named {name!r} is already registered.")
        self.modifiers[name] = fn
        return fn

    def modifier(self, name: str) -> Callable[[Modifier], Modifier]:
        return lambda fn: self.register_modifier(name, fn)

    def modifiers_for(self, names: Iterable[str]) -> list[Modifier]:
        self.load_settings()
        missing = [n for n in names if n not in self.modifiers]
        if missing:
            raise HandlerError(f"Unknown modifiers {missing!r}; register them first.")
        return [self.modifiers[n] for n in names]

    # -- validators --------------------------------------------------------
    def register_validator(self, fn: Validator, *, stage: str = "commit") -> Validator:
        if stage not in STAGES:
            raise HandlerError(f"stage must be one of {STAGES}, not {stage!r}.")
        if (stage, fn) not in self.validators:
            self.validators.append((stage, fn))
        return fn

    def validator(self, stage: str = "commit") -> Callable[[Validator], Validator]:
        return lambda fn: self.register_validator(fn, stage=stage)

    def validators_for(self, stage: str) -> list[Validator]:
        self.load_settings()
        return [fn for s, fn in self.validators if s == stage]

    # -- issue resolvers ---------------------------------------------------
    def register_resolver(self, code: str, fn: IssueResolver) -> IssueResolver:
        if code in self.resolvers and self.resolvers[code] is not fn:
            raise HandlerError(f"A resolver for issue code {code!r} is already registered.")
        self.resolvers[code] = fn
        return fn

    def resolver(self, code: str) -> Callable[[IssueResolver], IssueResolver]:
        return lambda fn: self.register_resolver(code, fn)

    def get_resolver(self, code: str) -> IssueResolver | None:
        self.load_settings()
        return self.resolvers.get(code)

    # -- what is known -------------------------------------------------------
    def topics(self) -> list[str]:
        """Every topic with a handler in this process, those of ``OMNIMAN["HANDLERS"]``
        included, sorted."""
        self.load_settings()
        return sorted(self.handlers)

    # -- settings ----------------------------------------------------------
    def load_settings(self) -> None:
        """Register what ``OMNIMAN`` names by dotted path (once).

        Every lookup (:meth:`get_handler`, :meth:`options_for`, :meth:`modifiers_for`,
        :meth:`validators_for`, :meth:`get_resolver`, :meth:`topics`) calls it first, so
        entries declared in settings are there in a fresh process whatever it looks up
        first. Read the registry through those methods, not its dicts."""
        if self._settings_loaded:
            return
        self._settings_loaded = True
        for topic, entry in conf.get("HANDLERS").items():
            path, options = HandlerOptions.from_setting(topic, entry)
            self.register_handler(topic, conf.import_path(path), **asdict(options))
        for path in conf.get("MODIFIERS"):
            self.register_modifier(path, conf.import_path(path))
        for entry in conf.get("VALIDATORS"):
            stage = "commit"
            if isinstance(entry, dict):
                stage, entry = entry.get("stage", "commit"), entry["path"]
            self.register_validator(conf.import_path(entry), stage=stage)
        for code, path in conf.get("ISSUE_RESOLVERS").items():
            self.register_resolver(code, conf.import_path(path))

    def pricing_backend(self) -> PricingBackend | None:
        path = conf.get("PRICING_BACKEND")
        if not path:
            return None
        backend = conf.import_path(path)
        return backend() if isinstance(backend, type) else backend

    def clear(self) -> None:
        """Forget everything (tests)."""
        self.__init__()  # type: ignore[misc]


registry = Registry()
