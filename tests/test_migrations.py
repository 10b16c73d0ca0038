from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    """makemigrations --check would write nothing."""
    call_command("makemigrations", "omniman", "--check", "--dry-run", verbosity=0)
