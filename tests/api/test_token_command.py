"""``omniman_token``: every host with ``omniman_api`` installed has it."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from omniman.models import ChannelGrant


def token(*args: str) -> str:
    out = io.StringIO()
    call_command("omniman_token", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_prints_only_the_token_and_the_same_one_on_rerun(pos):
    first = token("terminal-1", "--channels", "pos")
    assert re.fullmatch(r"[0-9a-f]{40}\n", first)
    assert token("terminal-1", "--channels", "pos") == first
    assert Token.objects.get(user__username="terminal-1").key == first.strip()
    assert list(ChannelGrant.objects.values_list("channel__code", flat=True)) == ["pos"]


@pytest.mark.django_db
def test_operator_flag_grants_and_revokes_operate(pos):
    token("ops", "--operator")
    assert User.objects.get(username="ops").has_perm("omniman.operate")
    token("ops")
    assert not User.objects.get(username="ops").has_perm("omniman.operate")


@pytest.mark.django_db
def test_refuses_an_unknown_channel(pos):
    with pytest.raises(CommandError, match="Unknown channels: nope"):
        token("someone", "--channels", "pos,nope")


@pytest.mark.django_db
def test_says_what_is_missing_without_the_authtoken_app(settings, pos):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework.authtoken"]
    with pytest.raises(CommandError, match='"rest_framework.authtoken" to INSTALLED_APPS'):
        token("someone")
