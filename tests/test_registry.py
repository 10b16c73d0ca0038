"""The registry finds what ``OMNIMAN`` declares by dotted path in a fresh process,
whatever it is asked first (each test runs its own Python)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import django
from django.conf import settings
import tests.settings as base

options = {k: getattr(base, k) for k in dir(base) if k.isupper()}
options["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}}
options["OMNIMAN"] = {
    **base.OMNIMAN,
    "HANDLERS": {"parcel.ship": "tests.app.declared.ship"},
    "MODIFIERS": ["tests.app.declared.no_discount"],
    "VALIDATORS": [{"path": "tests.app.declared.nothing_wrong", "stage": "draft"}],
    "ISSUE_RESOLVERS": {"out_of_stock": "tests.app.declared.swap_to_coffee"},
}
settings.configure(**options)
django.setup()
"""


def run(code: str, db: Path | str = ":memory:") -> str:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", f"DB = {str(db)!r}\n" + SETUP + textwrap.dedent(code)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_resolve_issue_uses_a_resolver_declared_in_settings(tmp_path):
    db = tmp_path / "db.sqlite3"
    run("""
        from django.core.management import call_command
        from omniman.services import apply_check_result, create_session, modify_session
        from omniman.testing import add_line_op, make_channel

        call_command("migrate", verbosity=0)
        make_channel("web", pricing_policy="internal")
        create_session(channel="web", session_key="S")
        modify_session(channel="web", session_key="S", ops=[add_line_op(sku="SOLDOUT", unit_price_q=None)])
        apply_check_result(channel="web", session_key="S", rev=1, code="stock", ok=False, issues=[
            {"id": "I1", "code": "out_of_stock", "actions": [
                {"id": "fix", "ops": [{"op": "remove_line", "line_id": "L1"}]}]}])
    """, db)
    # A fresh process whose first use of the registry is the resolve (a web worker
    # that has served nothing else yet).
    out = run("""
        from omniman.services import get_session, resolve_issue

        resolve_issue(channel="web", session_key="S", issue_id="I1", action_id="fix")
        print([line["sku"] for line in get_session("web", "S").items])
    """, db)
    # The resolver swaps the line; without it the action's own ops remove it.
    assert out == "['COFFEE']"


def test_every_lookup_loads_the_settings_first():
    out = run("""
        from omniman.registry import Registry
        from tests.app import declared

        print(Registry().get_resolver("out_of_stock") is declared.swap_to_coffee)
        print(Registry().get_handler("parcel.ship") is declared.ship)
        print(Registry().topics() == ["parcel.ship"])
        print(Registry().modifiers_for(["tests.app.declared.no_discount"]) == [declared.no_discount])
        print(Registry().validators_for("draft") == [declared.nothing_wrong])
    """)
    assert out.split() == ["True"] * 5
