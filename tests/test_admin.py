from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from omniman.models import Order, OrderEvent
from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def rows(db):
    from omniman.models import ChannelGrant, Directive

    channel = make_channel("pos")
    make_channel("ifood", external_ref_path="external_ref")
    ChannelGrant.objects.create(user=get_user_model().objects.create_user("ana"), channel=channel)
    for n, code in enumerate(["pos", "ifood"]):
        create_session(channel=code, session_key=f"SESS-{n}", handle_type="table", handle_ref=f"table-{n}",
                       data={"external_ref": f"EXT-{n}"})
        modify_session(channel=code, session_key=f"SESS-{n}", ops=[add_line_op()])
        commit_session(channel=code, session_key=f"SESS-{n}", idempotency_key=f"KEY-{n}")
    create_session(channel="pos", session_key="OPEN-1", handle_ref="table-9")
    Directive.objects.create(topic="stock.hold", payload={})


def omniman_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label == "omniman"]


def test_every_omniman_model_is_in_the_admin():
    """Items and events are inlines of their order, lines of their session."""
    from django.apps import apps

    from omniman.models import OrderItem, SessionLine

    inlines = {OrderItem, OrderEvent, SessionLine}  # shown inside their order or session
    assert {m for m, _ in omniman_admins()} == set(apps.get_app_config("omniman").get_models()) - inlines


def test_every_changelist_loads_sorts_filters_and_searches(staff, rows):
    for model, model_admin in omniman_admins():
        url = reverse(f"admin:omniman_{model._meta.model_name}_changelist")
        assert staff.get(url).status_code == 200, url
        for n, _ in enumerate(model_admin.list_display):
            assert staff.get(url, {"o": str(n + 1)}).status_code == 200, (url, n)
            assert staff.get(url, {"o": f"-{n + 1}"}).status_code == 200, (url, n)
        for spec in model_admin.list_filter:
            name = spec if isinstance(spec, str) else spec[0]
            value = model.objects.values_list(
                f"{name}__pk" if model._meta.get_field(name).is_relation else name, flat=True
            ).first()
            if value is not None:
                response = staff.get(url, {f"{name}__exact" if not model._meta.get_field(name).is_relation
                                           else f"{name}__id__exact": value})
                assert response.status_code == 200, (url, name)
        if model_admin.search_fields:
            assert staff.get(url, {"q": "x"}).status_code == 200, url


@pytest.mark.parametrize(
    ("model_name", "query", "expected"),
    [
        ("order", "EXT-1", 1),
        ("order", "SESS-0", 1),
        ("order", "table-1", 1),
        ("session", "OPEN-1", 1),
        ("session", "table-9", 1),
        ("idempotencykey", "KEY-1", 1),
        ("directive", "stock", 1),
        ("channel", "ifood", 1),
    ],
)
def test_search_finds_by_ref_session_key_and_handle(staff, rows, model_name, query, expected):
    # Handles contain an L, which order refs (Crockford base32) never do, so a random
    # ref cannot match them by chance.
    response = staff.get(reverse(f"admin:omniman_{model_name}_changelist"), {"q": query})
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_order_search_by_ref(staff, rows):
    ref = Order.objects.filter(channel__code="pos").get().ref
    response = staff.get(reverse("admin:omniman_order_changelist"), {"q": ref})
    assert [o.ref for o in response.context["cl"].result_list] == [ref]


def test_orders_are_read_only_except_status_which_goes_through_the_flow(staff, rows):
    order = Order.objects.get(channel__code="pos")
    url = reverse("admin:omniman_order_change", args=[order.pk])
    page = staff.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert list(form.fields) == ["status"]
    assert [c[0] for c in form.fields["status"].choices] == ["new", "preparing", "cancelled"]

    def post(status):
        data = {"status": status, "total_q": 1, "_save": "Save"}
        for formset in page.context["inline_admin_formsets"]:
            management = formset.formset.management_form
            data.update({management.add_prefix(k): v for k, v in management.initial.items()})
            for form in formset.formset.forms:
                data[form.add_prefix("id")] = form.instance.pk
                data[form.add_prefix("order")] = order.pk
        return staff.post(url, data)

    response = post("completed")
    assert response.status_code == 200  # not a choice: the form shows the error
    order.refresh_from_db()
    assert order.status == "new"

    response = post("preparing")
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.total_q) == ("preparing", 500)
    event = OrderEvent.objects.filter(order=order).last()
    assert (event.type, event.actor, event.payload) == (
        "order.status_changed", "root", {"from": "new", "to": "preparing"})


def test_orders_cannot_be_added_or_deleted(staff, rows):
    order = Order.objects.first()
    assert staff.get(reverse("admin:omniman_order_add")).status_code == 403
    assert staff.get(reverse("admin:omniman_order_delete", args=[order.pk])).status_code == 403


def test_read_only_pages_show_no_save_buttons(staff, rows):
    from omniman.models import Channel, Directive, IdempotencyKey, Session

    for model in (Session, Directive, IdempotencyKey):
        obj = model.objects.first()
        html = staff.get(reverse(f"admin:omniman_{model._meta.model_name}_change", args=[obj.pk])).content.decode()
        assert 'name="_save"' not in html and 'name="_continue"' not in html, model
        assert 'name="_addanother"' not in html, model
    for model in (Order, Channel):  # editable: Save stays
        obj = model.objects.first()
        html = staff.get(reverse(f"admin:omniman_{model._meta.model_name}_change", args=[obj.pk])).content.decode()
        assert 'name="_save"' in html, model


def test_the_directive_list_shows_the_last_line_of_the_last_error(staff, rows):
    from omniman.models import Directive

    Directive.objects.create(topic="invoice.send", payload={}, status="failed", last_error=(
        "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: gateway said no\n"))
    html = staff.get(reverse("admin:omniman_directive_changelist")).content.decode()
    assert "last error" in html.lower()
    assert "ValueError: gateway said no" in html and "Traceback" not in html


def test_saving_a_channel_whose_topic_has_no_handler_warns_in_the_admin(staff, rows):
    from omniman.models import Channel

    channel = Channel.objects.get(code="pos")
    url = reverse("admin:omniman_channel_change", args=[channel.pk])
    config = '{"post_commit_directives": ["invoice.send"]}'
    response = staff.post(url, {"code": "pos", "name": "POS", "currency": "BRL", "is_active": "on",
                                "config": config, "_save": "Save"}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert any("No handler is registered for topic 'invoice.send' (post_commit_directives)" in m for m in said), said


def test_orders_show_their_ticket_number_and_counters_are_read_only(staff, rows):
    from omniman.models import TicketCounter

    response = staff.get(reverse("admin:omniman_order_changelist"), {"channel__id__exact": rows_channel("pos")})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list.values_list("number", flat=True)) == [1]
    counter = TicketCounter.objects.get(channel__code="pos")
    url = reverse("admin:omniman_ticketcounter_change", args=[counter.pk])
    assert staff.post(url, {"last": 0}).status_code == 403
    assert TicketCounter.objects.get(pk=counter.pk).last == 1
    assert staff.get(reverse("admin:omniman_ticketcounter_add")).status_code == 403
    assert staff.get(reverse("admin:omniman_ticketcounter_delete", args=[counter.pk])).status_code == 403


def rows_channel(code: str) -> int:
    from omniman.models import Channel

    return Channel.objects.get(code=code).pk
