from __future__ import annotations

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from omniman.models import Channel, Order, OrderEvent, OrderItem
from omniman.services import commit_session, create_session, modify_session, transition_order
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"colour": "red"}, "Unknown key 'colour'"),
        ({"pricing_policy": "cheap"}, "'pricing_policy' must be 'internal' or 'external'"),
        ({"edit_policy": True}, "'edit_policy' must be 'open' or 'locked'"),
        ({"require_if_match": "yes"}, "'require_if_match' must be a boolean"),
        ({"session_ttl_minutes": 0}, "'session_ttl_minutes' must be a positive integer or null"),
        ({"session_ttl_minutes": True}, "'session_ttl_minutes' must be a positive integer or null"),
        ({"checks": {"stock": 3}}, "'checks' must be an object mapping check codes to directive topics"),
        ({"required_checks_on_commit": "stock"}, "'required_checks_on_commit' must be a list of check codes"),
        ({"required_checks_on_commit": ["stock"]}, "required check 'stock' is not declared in 'checks'"),
        ({"post_commit_directives": [1]}, "'post_commit_directives' must be a list of directive topics"),
        ({"initial_status": ""}, "'initial_status' must be a non-empty string"),
        ({"order_flow": {"new": "done"}}, "'order_flow' must be an object mapping a status"),
        ({"order_flow": {"open": ["done"]}}, "initial_status 'new' is not a status of 'order_flow'"),
        ({"ticket_numbers": "weekly"}, "'ticket_numbers' must be 'daily' or 'none'"),
        ({"ticket_numbers": None}, "'ticket_numbers' must be 'daily' or 'none'"),
        ({"business_day_starts_at": "4:00"}, "'business_day_starts_at' must be a time of day as 'HH:MM'"),
        ({"business_day_starts_at": "24:00"}, "'business_day_starts_at' must be a time of day as 'HH:MM'"),
        ({"business_day_starts_at": "04:00\n"}, "'business_day_starts_at' must be a time of day as 'HH:MM'"),
        ({"business_day_starts_at": 4}, "'business_day_starts_at' must be a time of day as 'HH:MM'"),
    ],
)
def test_channel_config_is_validated_on_save(config, message):
    channel = Channel(code="bad", name="Bad", config=config)
    with pytest.raises(ValidationError) as exc:
        channel.save()
    assert message in str(exc.value.message_dict["config"])
    assert not Channel.objects.filter(code="bad").exists()


def test_channel_config_must_be_an_object():
    with pytest.raises(ValidationError):
        Channel(code="bad", name="Bad", config=[]).save()


def test_a_valid_config_is_read_with_defaults():
    channel = Channel.objects.create(code="web", name="Web", config={
        "pricing_policy": "internal", "require_if_match": True, "checks": {"stock": "stock.hold"},
        "required_checks_on_commit": ["stock"], "post_commit_directives": ["payment.capture"],
        "session_ttl_minutes": 30,
    })
    channel = Channel.objects.get(pk=channel.pk)
    assert channel.conf.pricing_policy == "internal"
    assert channel.conf.edit_policy == "open"
    assert channel.conf.required_checks_on_commit == ("stock",)
    assert channel.conf.initial_status == "new"


def test_channel_conf_is_refreshed_on_save():
    channel = make_channel("pos")
    assert channel.conf.edit_policy == "open"
    channel.config = {**channel.config, "edit_policy": "locked"}
    channel.save()
    assert channel.conf.edit_policy == "locked"


def test_full_clean_reports_the_config_error():
    with pytest.raises(ValidationError) as exc:
        Channel(code="bad", name="Bad", currency="brl", config={"nope": 1}).full_clean()
    assert set(exc.value.message_dict) == {"config", "currency"}


def _some_rows():
    make_channel("pos")
    for n in range(3):
        create_session(channel="pos", session_key=f"S{n}")
        modify_session(channel="pos", session_key=f"S{n}", ops=[add_line_op(), add_line_op("CAKE", unit_price_q=9)])
        ref = commit_session(channel="pos", session_key=f"S{n}", idempotency_key=f"K{n}").order_ref
        transition_order(ref=ref, to="preparing")
    from django.contrib.auth import get_user_model

    from omniman.models import ChannelGrant, Directive

    Directive.objects.create(topic="stock.hold")
    ChannelGrant.objects.create(user=get_user_model().objects.create_user("ana"), channel=Channel.objects.get())


def test_every_model_ordering_runs_on_the_database():
    _some_rows()
    for model in apps.get_app_config("omniman").get_models():
        # would raise FieldError on an ordering that names a field that does not exist
        assert len(list(model.objects.all()[:5])) > 0, model


def test_items_and_events_keep_each_order_together_in_position_order():
    _some_rows()
    items = list(OrderItem.objects.values_list("order_id", "position"))
    assert items == sorted(items)
    events = list(OrderEvent.objects.values_list("order_id", "id"))
    assert events == sorted(events)
    order = Order.objects.first()
    assert [i.line_id for i in order.items.all()] == ["L1", "L2"]
    assert Order.objects.first().pk == Order.objects.order_by("-id").values_list("pk", flat=True)[0]


@pytest.mark.parametrize("currency", ["EURO", "eur", "E1R", "EUR\n", ""])
def test_a_currency_that_is_not_iso_4217_is_refused_on_save(currency):
    with pytest.raises(ValidationError) as exc:
        Channel.objects.create(code="bad", name="Bad", currency=currency)
    assert set(exc.value.message_dict) == {"currency"}
    assert not Channel.objects.filter(code="bad").exists()


def test_the_database_refuses_a_bad_currency_too():
    from django.db import IntegrityError, transaction

    channel = make_channel("pos", currency="EUR")
    with pytest.raises(IntegrityError), transaction.atomic():
        Channel.objects.filter(pk=channel.pk).update(currency="eur")
    channel.refresh_from_db()
    assert channel.currency == "EUR"


@pytest.mark.parametrize("code", ["pos", "pos.main", "web:eu-1", "A_b-9", "x" * 64])
def test_a_channel_code_follows_the_identifier_rule(code):
    """A channel code may hold ``.`` and ``:`` like every other identifier."""
    Channel(code=code, name="n").full_clean()


@pytest.mark.parametrize("code", ["", "two words", "café", "a/b", "x" * 65, "pos\n"])
def test_a_channel_code_outside_the_identifier_rule_is_refused(code):
    with pytest.raises(ValidationError) as caught:
        Channel(code=code, name="n").full_clean()
    assert "code" in caught.value.message_dict
