"""Who sees what: channels granted per user (superusers see all), operators for
directives. Everything of another channel answers 404 exactly like a missing one.

The per-object endpoints read no channel apart: they pass a :class:`GrantedChannel`
and the kernel checks the grant in the query that finds the session or order (a
join). Create reads the channel and the grant in one query, cached on the request."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.permissions import BasePermission

from omniman.exceptions import FieldError, NotFound, ValidationError
from omniman.models import Channel, ChannelGrant
from omniman.services import GrantedChannel
from omniman.services.preconditions import require_active
from omniman.validators import IDENT_RE

M = TypeVar("M", bound=Model)


def is_operator(user: Any) -> bool:
    """Staff, superusers, or users with ``omniman.operate``."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.is_superuser or user.has_perm("omniman.operate"))


class IsOperator(BasePermission):
    message = "Only operators may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_operator(request.user)


def check_code(value: Any, pointer: str = "/channel_code") -> str:
    if value is None:
        raise ValidationError(FieldError(pointer, "channel_code is required.", "required"))
    if not isinstance(value, str) or not IDENT_RE.match(value):
        raise ValidationError(FieldError(pointer, "channel_code must be a channel code.", "invalid"))
    return value


class Access:
    """The caller's view of channels, cached for one request."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.all = bool(user.is_superuser)
        self._channels: dict[str, Channel] = {}

    @classmethod
    def of(cls, request: Any) -> Access:
        access = getattr(request, "_omniman_access", None)
        if access is None or access.user is not request.user:
            access = cls(request.user)
            request._omniman_access = access
        return access

    def channel(self, code: Any, *, active: bool = False, pointer: str = "/channel_code") -> Channel:
        """A channel the caller may use, in one query (then cached); unknown or not
        granted is ``NotFound``; with ``active``, an inactive one is a validation error."""
        code = check_code(code, pointer)
        channel = self._channels.get(code)
        if channel is None:
            qs = Channel.objects.filter(code=code)
            if not self.all:
                qs = qs.filter(grants__user=self.user)
            channel = qs.first()
            if channel is None:
                raise NotFound("No such channel.")
            self._channels[code] = channel
        if active:
            require_active(channel, pointer)
        return channel

    def granted(self, code: Any, *, active: bool = False, pointer: str = "/channel_code") -> GrantedChannel:
        """Channel ``code`` as the caller may reach it, for a kernel lookup that checks
        the grant in its own query (none here); ``active``: an inactive channel is a
        validation error at ``pointer``."""
        return GrantedChannel(check_code(code, pointer), self.grantee, active=active, pointer=pointer)

    def any_granted(self) -> GrantedChannel:
        """Every channel the caller may reach (for an order, which is named by its ref alone)."""
        return GrantedChannel(None, self.grantee)

    @property
    def grantee(self) -> Any:
        """The user whose grants limit a lookup; None for a superuser (every channel)."""
        return None if self.all else self.user

    def scope(self, qs: QuerySet[M], field: str = "channel") -> QuerySet[M]:
        """``qs`` limited to the caller's channels (a subquery: no extra statement)."""
        if self.all:
            return qs
        granted = ChannelGrant.objects.filter(user=self.user).values("channel_id")
        return qs.filter(**{f"{field}_id__in" if field else "id__in": granted})
