"""Create or update an API user and print its token (only the token, on stdout).

Every host with the HTTP API has it: ``python manage.py omniman_token USERNAME
[--channels pos,web] [--operator]``. It needs ``rest_framework.authtoken`` in
``INSTALLED_APPS``, as DRF's token authentication does."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from omniman.models import Channel, ChannelGrant


class Command(BaseCommand):
    help = (
        "Create or update USERNAME, grant it exactly the given channels (all when omitted), "
        "make it an operator with --operator, and print its API token. A rerun prints the same token."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--channels", default="", help="Comma-separated channel codes, e.g. pos,web (default: all)."
        )
        parser.add_argument(
            "--operator", action="store_true", help="Grant omniman.operate (directives, retries)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not apps.is_installed("rest_framework.authtoken"):
            raise CommandError(
                'API tokens need DRF\'s token app: add "rest_framework.authtoken" to INSTALLED_APPS '
                "and run migrate."
            )
        from rest_framework.authtoken.models import Token

        codes = [c.strip() for c in options["channels"].split(",") if c.strip()]
        with transaction.atomic():
            if codes:
                channels = list(Channel.objects.filter(code__in=codes))
                missing = sorted(set(codes) - {c.code for c in channels})
                if missing:
                    raise CommandError(f"Unknown channels: {', '.join(missing)}")
            else:
                channels = list(Channel.objects.all())
            user, created = get_user_model().objects.get_or_create(username=options["username"])
            if created:
                user.set_unusable_password()
                user.save()
            ChannelGrant.objects.filter(user=user).exclude(channel__in=channels).delete()
            for channel in channels:
                ChannelGrant.objects.get_or_create(user=user, channel=channel)
            operate = Permission.objects.get(content_type__app_label="omniman", codename="operate")
            if options["operator"]:
                user.user_permissions.add(operate)
            else:
                user.user_permissions.remove(operate)
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
