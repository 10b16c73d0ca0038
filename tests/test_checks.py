from __future__ import annotations

import pytest
from django.core.management import call_command

from omniman import conf
from omniman.checks import check_settings


def ids(settings, omniman):
    settings.OMNIMAN = omniman
    return [e.id for e in check_settings()]


def test_the_test_settings_pass(settings):
    assert check_settings() == []


def test_unknown_key_is_e001(settings):
    assert ids(settings, {"MAX_OPS": 3}) == ["omniman.E001"]


@pytest.mark.parametrize(
    "omniman",
    [
        {"MAX_OPS_PER_MODIFY": "100"},
        {"MAX_OPS_PER_MODIFY": True},
        {"MAX_OPS_PER_MODIFY": 0},
        {"MAX_LINES_PER_SESSION": -1},
        {"IDEMPOTENCY_TTL_SECONDS": 1.5},
        {"HANDLERS": ["x"]},
        {"AUTODISCOVER": "yes"},
        {"DIRECTIVE_BACKEND": "rabbit"},
        {"DIRECTIVE_BACKOFF_BASE_SECONDS": False},
    ],
)
def test_wrong_type_or_value_is_e002(settings, omniman):
    assert ids(settings, omniman) == ["omniman.E002"]


def test_not_a_dict_is_e002(settings):
    assert ids(settings, ["MAX_OPS_PER_MODIFY"]) == ["omniman.E002"]


def test_a_dotted_path_that_does_not_import_is_e003(settings):
    assert ids(settings, {"PRICING_BACKEND": "nowhere.Catalog"}) == ["omniman.E003"]
    assert ids(settings, {"HANDLERS": {"stock.hold": "tests.app.catalog.nothing_here"}}) == ["omniman.E003"]


def test_checks_run_with_manage_py_check(settings):
    from django.core.management.base import SystemCheckError

    settings.OMNIMAN = {"NOPE": 1}
    with pytest.raises(SystemCheckError, match="omniman.E001"):
        call_command("check")


def test_settings_merge_key_by_key_and_follow_overrides(settings):
    settings.OMNIMAN = {"MAX_OPS_PER_MODIFY": 7}
    assert conf.get("MAX_OPS_PER_MODIFY") == 7
    assert conf.get("MAX_LINES_PER_SESSION") == 500
    settings.OMNIMAN = {}
    assert conf.get("MAX_OPS_PER_MODIFY") == 100


def test_every_setting_has_a_type():
    assert set(conf.DEFAULTS) == set(conf._TYPES)


def test_an_unknown_setting_name_is_a_programming_error():
    with pytest.raises(KeyError):
        conf.get("NOPE")


def test_every_setting_is_documented():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "ref" / "settings.rst").read_text()
    missing = [key for key in conf.DEFAULTS if f"``{key}``" not in page]
    assert missing == []
