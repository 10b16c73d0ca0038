"""``OMNIMAN_PAYMENTS`` is checked at start: each mistake has its own id."""

from __future__ import annotations

import pytest

from omniman.contrib.payments.checks import check_methods
from omniman.contrib.payments.providers import Cash, DemoTerminal, providers


def ids(settings, value):
    settings.OMNIMAN_PAYMENTS = value
    return [(e.id, e.msg) for e in check_methods()]


def test_the_test_settings_are_clean():
    assert check_methods() == []
    assert {m: type(p) for m, p in providers().items()} == {"cash": Cash, "card": DemoTerminal}


@pytest.mark.parametrize(("value", "expected_id", "says"), [
    ([], "omniman_payments.E001", "must be a dict"),
    ({"METHOD": {}}, "omniman_payments.E001", "Unknown key 'METHOD'"),
    ({"METHODS": ["cash"]}, "omniman_payments.E001", "must be a dict of method"),
    ({"METHODS": {"cash register": "omniman.contrib.payments.providers.Cash"}}, "omniman_payments.E001",
     "1 to 64 characters"),
    ({"METHODS": {"cash": "nowhere.Cash"}}, "omniman_payments.E002", "No module named 'nowhere'"),
    ({"METHODS": {"cash": "omniman.models.Order"}}, "omniman_payments.E002", "not a subclass"),
    ({"METHODS": {"cash": {"path": "omniman.contrib.payments.providers.Cash", "options": {"x": 1}}}},
     "omniman_payments.E002", "takes no options"),
    ({"METHODS": {"card": {"path": "omniman.contrib.payments.providers.DemoTerminal",
                           "options": {"decline_above_q": -1}}}}, "omniman_payments.E002", "decline_above_q"),
    ({"METHODS": {"card": {"provider": "x"}}}, "omniman_payments.E002", "dotted path"),
])
def test_each_mistake_has_its_id(settings, value, expected_id, says):
    [(found_id, message)] = ids(settings, value)
    assert found_id == expected_id and says in message, message


def test_a_settings_change_rebuilds_the_providers(settings):
    settings.OMNIMAN_PAYMENTS = {"METHODS": {"drawer": "omniman.contrib.payments.providers.Cash"}}
    assert list(providers()) == ["drawer"]
