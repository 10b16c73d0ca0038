from __future__ import annotations

import io

import pytest
from django.core import checks
from django.core.management import call_command

from omniman import conf
from omniman.checks import check_channel_topics, check_database, check_settings
from omniman.models import Channel
from omniman.registry import registry
from omniman.testing import make_channel


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


def test_an_old_sqlite_is_e006_and_a_current_one_passes(monkeypatch):
    from django.db import connection

    import omniman.checks

    assert check_database() == []
    monkeypatch.setattr(omniman.checks, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(omniman.checks, "sqlite_version", "3.34.1")
    found = check_database()
    if connection.vendor == "sqlite":
        assert [e.id for e in found] == ["omniman.E006"] and "3.34.1" in found[0].msg
    else:
        assert found == []  # PostgreSQL: nothing to say


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


def test_every_setting_has_a_type_its_default_has():
    assert set(conf.DEFAULTS) == set(conf.SETTINGS)
    for name, setting in conf.SETTINGS.items():
        assert isinstance(setting.default, setting.types), name


def test_an_unknown_setting_name_is_a_programming_error():
    with pytest.raises(KeyError):
        conf.get("NOPE")


def test_every_setting_is_documented():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "ref" / "settings.rst").read_text()
    missing = [key for key in conf.DEFAULTS if f"``{key}``" not in page]
    assert missing == []


# -- omniman.W101: database check on channels ---------------------------------------


@pytest.fixture
def handlers():
    added = []

    def register(topic, fn):
        registry.register_handler(topic, fn)
        added.append(topic)

    yield register
    for topic in added:
        registry.handlers.pop(topic, None)


@pytest.mark.django_db
def test_a_channel_topic_without_handler_is_w101(handlers):
    handlers("stock.check", lambda d, ctx: None)
    make_channel("web", checks={"stock": "stock.check", "fraud": "fraud.score"},
                 required_checks_on_commit=["stock"], post_commit_directives=["invoice.send"])
    found = [m for m in checks.run_checks(databases=["default"]) if m.id == "omniman.W101"]
    assert [m.msg.split(" but ")[0] for m in found] == [
        "Channel 'web' names directive topic 'fraud.score' in checks.fraud",
        "Channel 'web' names directive topic 'invoice.send' in post_commit_directives",
    ]
    assert "@registry.handler('invoice.send')" in found[1].hint
    assert "stock.check" in found[1].hint  # the topics that have a handler
    out = io.StringIO()
    call_command("check", "--database", "default", stderr=out, stdout=out)
    assert "omniman.W101" in out.getvalue() and "invoice.send" in out.getvalue()


@pytest.mark.django_db
def test_status_and_session_end_topics_without_handler_are_w101(handlers):
    handlers("kitchen.cancelled", lambda d, ctx: None)
    make_channel("pos", status_directives={"cancelled": ["kitchen.cancelled", "stock.return"]},
                 session_end_directives=["stock.release"])
    found = [m for m in checks.run_checks(databases=["default"]) if m.id == "omniman.W101"]
    assert [m.msg.split(" but ")[0] for m in found] == [
        "Channel 'pos' names directive topic 'stock.return' in status_directives.cancelled",
        "Channel 'pos' names directive topic 'stock.release' in session_end_directives",
    ]


@pytest.mark.django_db
def test_migrate_runs_the_check(handlers):
    make_channel("web", post_commit_directives=["invoice.send"])
    out = io.StringIO()
    call_command("migrate", skip_checks=False, verbosity=0, stderr=out, stdout=out)
    assert "omniman.W101" in out.getvalue()


@pytest.mark.django_db
def test_without_a_database_the_check_reads_nothing(django_assert_num_queries):
    make_channel("web", post_commit_directives=["invoice.send"])
    with django_assert_num_queries(0):
        assert check_channel_topics(databases=None) == []
    assert "omniman.W101" not in [m.id for m in checks.run_checks()]


@pytest.mark.django_db
def test_the_check_is_quiet_when_the_table_does_not_exist_yet(monkeypatch):
    monkeypatch.setattr(Channel._meta, "db_table", "omniman_channel_not_migrated")
    assert check_channel_topics(databases=["default"]) == []


@pytest.mark.django_db
def test_a_handled_topic_is_not_reported(handlers):
    handlers("invoice.send", lambda d, ctx: None)
    make_channel("web", post_commit_directives=["invoice.send"])
    assert check_channel_topics(databases=["default"]) == []


# -- omniman.E101, E102: how the API authenticates ------------------------------------


def api_ids():
    from omniman_api.checks import check_authentication

    return [e.id for e in check_authentication()]


def test_the_test_settings_pass_the_api_checks():
    assert api_ids() == []


def test_token_authentication_without_its_app_is_e101(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework.authtoken"]
    assert api_ids() == ["omniman.E101"]
    assert "omniman.E101" in [m.id for m in checks.run_checks()]
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"]
    }
    assert api_ids() == []


@pytest.mark.parametrize("classes", [[], ["nowhere.Authentication"]])
def test_no_authentication_class_the_api_can_use_is_e102(settings, classes):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": classes}
    assert api_ids() == ["omniman.E102"]


def test_w101_is_quiet_before_migrate_and_found_after_it(tmp_path):
    """In a fresh process on an empty database: ``migrate`` runs the database checks
    before the tables exist (nothing to say, no crash), then ``check --database``
    finds the channel's topic."""
    from tests.test_registry import run

    out = run("""
        import io
        from django.core.management import call_command
        from omniman.testing import make_channel

        said = io.StringIO()
        call_command("migrate", skip_checks=False, verbosity=0, stdout=said, stderr=said)
        print("before:", "W101" in said.getvalue())
        make_channel("web", post_commit_directives=["invoice.send"])
        said = io.StringIO()
        call_command("check", "--database", "default", stdout=said, stderr=said)
        print("after:", "omniman.W101" in said.getvalue() and "invoice.send" in said.getvalue())
    """, tmp_path / "db.sqlite3")
    assert out.splitlines() == ["before: False", "after: True"]
