"""Ticket numbers over HTTP: on the order, kept by a replayed commit, and found with
orders/?number= in the channel's business day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from omniman.models import ChannelGrant
from omniman.services.numbers import business_day
from omniman.testing import make_channel

from .conftest import add_coffee, data, open_session, problem

pytestmark = pytest.mark.django_db


def commit(api, key: str, channel: str = "pos", **body) -> dict:
    open_session(api, channel=channel, key=key)
    add_coffee(api, key=key, channel=channel)
    response = api.post_json(f"/api/sessions/{key}/commit/", {"channel_code": channel, **body})
    assert response.status_code == 201, response.content
    return data(response)


def order(api, ref: str) -> dict:
    return data(api.get(f"/api/orders/{ref}/"))


def refs(api, query: str) -> list[str]:
    response = api.get("/api/orders/" + query)
    assert response.status_code == 200, response.content
    return [o["ref"] for o in data(response)["results"]]


def test_the_order_carries_its_number_and_business_day(api, pos):
    first, second = commit(api, "A"), commit(api, "B")
    assert [order(api, first["order_ref"])["number"], order(api, second["order_ref"])["number"]] == [1, 2]
    assert order(api, first["order_ref"])["business_day"] == business_day(pos).isoformat()
    # The commit's body is SPEC's, as existing clients read it: the number is on the order.
    assert "number" not in first
    listed = data(api.get("/api/orders/"))["results"]
    assert [o["number"] for o in listed] == [2, 1]


def test_a_replayed_commit_answers_the_same_order_and_number(api):
    first = commit(api, "A", idempotency_key="K")
    again = api.post_json("/api/sessions/A/commit/", {"channel_code": "pos", "idempotency_key": "K"})
    assert again["Idempotent-Replayed"] == "true" and data(again) == first
    assert order(api, first["order_ref"])["number"] == 1
    assert order(api, commit(api, "B")["order_ref"])["number"] == 2


def test_a_channel_without_numbers_shows_null(api, user):
    ChannelGrant.objects.create(user=user, channel=make_channel("kiosk", ticket_numbers="none"))
    ref = commit(api, "A", channel="kiosk")["order_ref"]
    assert order(api, ref)["number"] is None


def test_the_number_filter_finds_todays_ticket_in_each_channel(api, user):
    a, b = commit(api, "A")["order_ref"], commit(api, "B")["order_ref"]
    ChannelGrant.objects.create(user=user, channel=make_channel("bar"))
    bar = commit(api, "C", channel="bar")["order_ref"]  # the bar's own ticket 1
    assert refs(api, "?number=1") == [bar, a]
    assert refs(api, "?number=1&channel_code=pos") == [a]
    assert refs(api, "?number=2") == [b]
    assert refs(api, "?number=3") == []


def test_yesterdays_ticket_needs_created_after(api, monkeypatch):
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now - timedelta(days=1))
    old = commit(api, "A")["order_ref"]
    monkeypatch.setattr(timezone, "now", lambda: now)
    fresh = commit(api, "B")["order_ref"]
    # A new business day numbers from 1 again.
    assert [order(api, old)["number"], order(api, fresh)["number"]] == [1, 1]
    assert refs(api, "?number=1") == [fresh]
    since = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert refs(api, f"?number=1&created_after={since}") == [fresh, old]


@override_settings(TIME_ZONE="America/Sao_Paulo")
def test_the_number_filter_follows_each_channels_business_day_start(api, user, monkeypatch, pos):
    """At 02:00 local, pos (its day starts at 04:00, the default) is still on the
    evening's business day, and a channel whose day starts at midnight is on the new one."""
    ChannelGrant.objects.create(user=user, channel=make_channel("night", business_day_starts_at="00:00"))
    two_am = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # 02:00 in São Paulo (UTC−3)
    monkeypatch.setattr(timezone, "now", lambda: two_am)
    late = commit(api, "A")["order_ref"]
    night = commit(api, "N", channel="night")["order_ref"]
    assert [order(api, late)["business_day"], order(api, night)["business_day"]] == ["2026-12-02", "2026-12-03"]
    assert refs(api, "?number=1") == [night, late]
    # At 04:30 pos has moved on to 3 December too: its evening ticket 1 is no longer today's.
    monkeypatch.setattr(timezone, "now", lambda: two_am + timedelta(hours=2, minutes=30))
    assert refs(api, "?number=1") == [night]
    assert refs(api, "?number=1&created_after=2026-12-01T00:00:00Z") == [night, late]


@pytest.mark.parametrize("value", ["0", "-1", "one", "1.0", "2147483648", "99999999999", "", " 1"])
def test_a_bad_number_filter_is_a_validation_error(api, value):
    body = problem(api.get("/api/orders/", {"number": value}), 400, "validation_error")
    assert [e["pointer"] for e in body["errors"]] == ["/number"]
