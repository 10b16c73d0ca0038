"""The Logging reference page (docs/ref/logging.rst): what a host sees of omniman's
records without a LOGGING setting, and with the page's snippet appended to its
settings as printed; both outputs compared with the lines the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.example.harness import ROOT, example_env

PAGE = ROOT / "docs" / "ref" / "logging.rst"
SNIPPET = ROOT / "docs" / "ref" / "logging" / "settings_snippet.py"

# A host project's settings, reduced to what the kernel needs.
SETTINGS = """
SECRET_KEY = "logging-page"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "omniman"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
OMNIMAN = {"DIRECTIVE_BACKEND": "inline"}
"""

# A channel that names a topic nobody handles (a WARNING), then a session (an INFO).
SCRIPT = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from omniman.models import Channel
from omniman.services import create_session
channel = Channel.objects.create(code="counter", name="Counter", config={"post_commit_directives": ["mail.send"]})
create_session(channel=channel, session_key="S-1")
"""

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def stderr_of(tmp_path: Path, settings: str) -> list[str]:
    (tmp_path / "shop_settings.py").write_text(settings)
    env = example_env(DJANGO_SETTINGS_MODULE="shop_settings", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def literal_blocks(page: str) -> list[str]:
    """The page's one-line literal blocks (after ``::``), in order."""
    return re.findall(r"::\n\n    (.+)\n", page)


def test_without_logging_a_warning_is_the_bare_message_and_info_is_dropped(tmp_path: Path) -> None:
    bare, _ = literal_blocks(PAGE.read_text())
    assert stderr_of(tmp_path, SETTINGS) == [bare]


def test_with_the_snippet_records_carry_time_level_and_logger(tmp_path: Path) -> None:
    _, shown = literal_blocks(PAGE.read_text())
    lines = stderr_of(tmp_path, SETTINGS + "\n" + SNIPPET.read_text())
    assert [re.sub(rf"^{TIME} ", "T ", line) for line in lines] == [
        re.sub(rf"^{TIME} ", "T ", shown),
        "T INFO omniman.services.sessions session created channel=counter session_key=S-1 actor=",
    ]
