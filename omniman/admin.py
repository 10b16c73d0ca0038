from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from omniman.models import (
    Channel,
    ChannelGrant,
    Directive,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderItem,
    Session,
    SessionLine,
    TicketCounter,
)

# ModelAdmin, TabularInline and ModelForm are generic in django-stubs only: subscripting
# them at runtime needs django_stubs_ext.monkeypatch() in the host's settings, which a
# reusable app cannot ask for. Hence the ``type-arg`` ignores on the classes below.


class ReadOnlyPagesMixin:
    """For pages where no field can be edited: no Save buttons (Delete stays where the
    user may delete)."""

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name", "currency", "is_active", "updated_at")
    list_filter = ("is_active", "currency")
    search_fields = ("code", "name")

    def save_model(self, request: HttpRequest, obj: Channel, form: Any, change: bool) -> None:
        from omniman.models.channel import unhandled_topics

        super().save_model(request, obj, form, change)
        missing, known = unhandled_topics(obj.config)
        for where, topic in missing:
            self.message_user(
                request,
                f"No handler is registered for topic {topic!r} ({where}): its directives will be retried, "
                f"then fail. Topics with a handler: {', '.join(known) or 'none'}.",
                messages.WARNING,
            )


@admin.register(ChannelGrant)
class ChannelGrantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "channel", "created_at")
    list_filter = ("channel",)
    list_select_related = ("user", "channel")
    search_fields = ("user__username", "channel__code")


class SessionLineInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SessionLine
    extra = 0
    can_delete = False
    readonly_fields = ("position", "line_id", "sku", "qty", "unit_price_q", "line_total_q", "meta")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(ReadOnlyPagesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("session_key", "channel", "state", "rev", "total_q", "handle_type", "handle_ref", "created_at")
    list_filter = ("channel", "state")
    list_select_related = ("channel",)
    search_fields = ("session_key", "handle_ref", "order_ref")
    readonly_fields = [f.name for f in Session._meta.fields]
    inlines = [SessionLineInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class OrderItemInline(admin.TabularInline):  # type: ignore[type-arg]
    model = OrderItem
    extra = 0
    can_delete = False
    readonly_fields = ("position", "line_id", "sku", "qty", "unit_price_q", "line_total_q", "meta")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ("type", "actor", "payload", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderStatusForm(forms.ModelForm):  # type: ignore[type-arg]
    """Offers only the statuses the channel's flow allows from the current one."""

    class Meta:
        model = Order
        fields = ("status",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        order = self.instance
        if order.pk is not None and "status" in self.fields:
            current = order.status
            allowed = order.channel.conf.allowed_next(current)
            self.fields["status"] = forms.ChoiceField(
                choices=[(current, f"{current} (current)")] + [(s, s) for s in allowed],
                initial=current,
                help_text="Moves the order along its channel's flow and records an event.",
            )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("ref", "number", "channel", "business_day", "status", "total_q", "currency", "external_ref",
                    "created_at")
    list_filter = ("channel", "status", "business_day")
    list_select_related = ("channel",)
    search_fields = ("ref", "session_key", "handle_ref", "external_ref")
    ordering = ("-id",)
    form = OrderStatusForm
    inlines = [OrderItemInline, OrderEventInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Order._meta.fields if f.name != "status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        # Never obj.save(): the status changes through the service only (the channel's
        # flow, a locked row, an OrderEvent and the signal), and nothing else changes.
        from omniman.exceptions import OmnimanError
        from omniman.services import transition_order

        if change and "status" in form.changed_data:
            try:
                transition_order(ref=obj.ref, to=obj.status, actor=request.user.get_username())
            except OmnimanError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
        obj.refresh_from_db()


@admin.register(Directive)
class DirectiveAdmin(ReadOnlyPagesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "topic", "status", "attempts", "max_attempts", "error", "available_at",
                    "dispatched_at", "updated_at")
    list_filter = ("status", "topic")
    search_fields = ("topic", "last_error")
    readonly_fields = [f.name for f in Directive._meta.fields]
    actions = ["retry_selected", "mark_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="last error", ordering="last_error")
    def error(self, obj: Directive) -> str:
        """The last line of ``last_error`` (a traceback ends with the exception)."""
        lines = obj.last_error.strip().splitlines()
        line = lines[-1] if lines else ""
        return line if len(line) <= 100 else line[:99] + "…"

    def _skipped(self, request: HttpRequest, skipped: list[Directive], what: str) -> None:
        if skipped:
            listed = ", ".join(f"{d.pk} ({d.status})" for d in skipped[:20])
            more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
            self.message_user(request, f"Skipped {len(skipped)} directive(s) {what}: {listed}{more}.",
                              messages.WARNING)

    @admin.action(description="Retry the selected failed directives")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Directive]) -> None:
        from omniman.exceptions import OmnimanError
        from omniman.services.directive_ops import retry_directive

        done = 0
        skipped = []
        for directive in queryset.order_by("pk"):
            if directive.status != Directive.Status.FAILED:
                skipped.append(directive)
                continue
            try:
                retry_directive(directive.pk, actor=request.user.get_username())
                done += 1
            except OmnimanError as exc:
                self.message_user(request, f"{directive.pk}: {exc.detail}", messages.WARNING)
        self.message_user(request, f"{done} directive(s) queued again.")
        self._skipped(request, skipped, "that are not failed (only failed ones are retried)")

    @admin.action(description="Mark the selected directives failed")
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[Directive]) -> None:
        from omniman.services.directive_ops import fail_directive

        done = 0
        skipped = []
        for directive in queryset.order_by("pk"):
            if fail_directive(directive.pk, actor=request.user.get_username()):
                done += 1
            else:
                directive.refresh_from_db(fields=["status"])
                skipped.append(directive)
        self.message_user(request, f"{done} directive(s) marked failed.")
        self._skipped(request, skipped, "that are already finished (only queued or running ones are failed)")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyPagesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("key", "channel", "status_code", "created_at", "expires_at")
    list_filter = ("channel",)
    list_select_related = ("channel",)
    search_fields = ("key",)
    readonly_fields = [f.name for f in IdempotencyKey._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TicketCounter)
class TicketCounterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The last ticket number of each channel and business day, to view only: the
    commit alone moves a counter (an edit could hand a number out twice)."""

    list_display = ("channel", "business_day", "last")
    list_filter = ("channel", "business_day")
    list_select_related = ("channel",)
    ordering = ("-business_day", "channel__code")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
