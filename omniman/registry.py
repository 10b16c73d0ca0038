"""The one place where handlers, modifiers, validators and issue resolvers live.

Register by decorator (``@registry.handler("stock.hold")``), by call
(``registry.register_handler("stock.hold", fn)``) or by dotted path in
``OMNIMAN["HANDLERS"]`` and friends. A duplicate topic is an error.

Custom ops (:class:`omniman.ops.CustomOp`) are registered the same ways
(``@registry.op("apply_coupon", fields={"code": str})``, ``registry.register_op``,
``OMNIMAN["OPS"]``); a name that clashes with a built-in op or another custom op is
an error at registration.

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
from omniman.ops import OP_FIELDS, CustomOp, OpField, OptionGroup
from omniman.validators import IDENT_RE, IDENT_RULE

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
        def number(value: Any, kinds: tuple[type[int] | type[float], ...], minimum: float, name: str) -> Any:
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
    """Pure: given a view of the session (``items``, ``data``, ``subtotal_q``,
    ``line_count``, ``tax_inclusive`` and the adjustments so far; see
    :func:`omniman.ops.compute_pricing`) return the adjustments to add."""

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
    an unknown sku is left out of the answer.

    A backend may also define ``option_groups(channel, skus)``, returning for each sku
    that takes options its :class:`~omniman.ops.OptionGroup` list; without it, or for a
    sku it leaves out, a line takes no options."""

    def prices(self, channel: Channel, skus: set[str]) -> Mapping[str, int]: ...


def _op_field(name: str, spec: Any) -> OpField:
    """An op field from its declaration: an :class:`OpField`, a kind name, or a type
    (``str``, ``int``, ``bool``, ``dict``)."""
    if isinstance(spec, OpField):
        field = spec
    elif isinstance(spec, str):
        field = OpField(kind=spec)
    else:
        kinds = {str: "string", int: "integer", bool: "boolean", dict: "object"}
        if spec not in kinds:
            raise HandlerError(f"field {name!r}: give an OpField, a kind name or one of str, int, bool, dict.")
        field = OpField(kind=kinds[spec])
    if field.kind not in OpField.KINDS:
        raise HandlerError(f"field {name!r}: kind {field.kind!r} is not one of {', '.join(OpField.KINDS)}.")
    return field


def define_op(
    name: str,
    fn: Callable[..., Any],
    *,
    fields: Mapping[str, Any] | None = None,
    lines: str = "named",
    new_lines: int = 0,
    description: str = "",
) -> CustomOp:
    """A :class:`~omniman.ops.CustomOp` from a function and its field declarations."""
    if not isinstance(name, str) or not IDENT_RE.match(name):
        raise HandlerError(f"op name {name!r} must be {IDENT_RULE}")
    if lines not in ("named", "all"):
        raise HandlerError(f"op {name!r}: lines must be 'named' or 'all', not {lines!r}.")
    declared = {}
    for key, spec in (fields or {}).items():
        if key == "op":
            raise HandlerError(f"op {name!r}: a field may not be called 'op'.")
        declared[key] = _op_field(key, spec)
    return CustomOp(name=name, fields=declared, fn=fn, lines=lines, new_lines=new_lines,
                    description=description or (fn.__doc__ or "").strip().split("\n")[0])


class Registry:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.handler_options: dict[str, HandlerOptions] = {}
        self.modifiers: dict[str, Modifier] = {}
        self.validators: list[tuple[str, Validator]] = []
        self.resolvers: dict[str, IssueResolver] = {}
        self.modifiers_without_lines: set[str] = set()
        self.custom_ops: dict[str, CustomOp] = {}
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
    def register_modifier(self, name: str, fn: Modifier, *, lines: bool = True) -> Modifier:
        """Register ``fn`` as modifier ``name``. ``lines=False`` says it reads no line
        (its view's ``items`` is None, and it adjusts the order only): a channel whose
        modifiers all say so keeps a modify's cost flat in the number of lines."""
        if name in self.modifiers and self.modifiers[name] is not fn:
            raise HandlerError(f"A modifier named {name!r} is already registered.")
        self.modifiers[name] = fn
        if lines:
            self.modifiers_without_lines.discard(name)
        else:
            self.modifiers_without_lines.add(name)
        return fn

    def modifier(self, name: str, *, lines: bool = True) -> Callable[[Modifier], Modifier]:
        return lambda fn: self.register_modifier(name, fn, lines=lines)

    def modifiers_read_lines(self, names: Iterable[str]) -> bool:
        """Whether any of the modifiers ``names`` reads lines."""
        self.load_settings()
        return any(n not in self.modifiers_without_lines for n in names)

    # -- custom ops --------------------------------------------------------
    def register_op(self, op: CustomOp | str, fn: Callable[..., Any] | None = None, **kwargs: Any) -> CustomOp:
        """Register a custom op: a :class:`~omniman.ops.CustomOp`, or a name and a
        function with :func:`define_op`'s keyword arguments. A built-in op's name, or
        another custom op's, is an error."""
        if not isinstance(op, CustomOp):
            if fn is None:
                raise HandlerError("register_op needs a CustomOp, or a name and a function.")
            op = define_op(op, fn, **kwargs)
        if op.name in OP_FIELDS:
            raise HandlerError(f"Custom op {op.name!r} clashes with the built-in op of that name.")
        existing = self.custom_ops.get(op.name)
        if existing is not None and existing != op:
            raise HandlerError(f"A custom op named {op.name!r} is already registered.")
        self.custom_ops[op.name] = op
        return op

    def op(self, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@registry.op("apply_coupon", fields={"code": str})``."""
        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register_op(name, fn, **kwargs)
            return fn

        return decorate

    def ops(self) -> dict[str, CustomOp]:
        """The custom ops, by name."""
        self.load_settings()
        return self.custom_ops

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
        for path in conf.get("OPS"):
            self.register_op(conf.import_path(path))

    def pricing_backend(self) -> PricingBackend | None:
        path = conf.get("PRICING_BACKEND")
        if not path:
            return None
        backend = conf.import_path(path)
        instance: PricingBackend = backend() if isinstance(backend, type) else backend
        return instance

    def option_groups(
        self, backend: PricingBackend, channel: Channel, skus: set[str]
    ) -> Mapping[str, list[OptionGroup]]:
        """The option groups ``backend`` declares for ``skus`` (none when it has no
        ``option_groups``)."""
        method = getattr(backend, "option_groups", None)
        if method is None:
            return {}
        return {sku: list(groups) for sku, groups in method(channel, skus).items()}

    def clear(self) -> None:
        """Forget everything (tests)."""
        self.__init__()  # type: ignore[misc]  # re-run __init__ on purpose


registry = Registry()
