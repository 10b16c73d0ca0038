from __future__ import annotations

import os

import pytest
from django.db import connection
from hypothesis import settings

from omniman.testing import make_channel

# Mutation runs (docs/dev/tests.rst) run the tests once per mutant: fewer examples there.
settings.register_profile("mutation", max_examples=10)
settings.load_profile(os.environ.get("OMNIMAN_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def pos(db):
    return make_channel("pos")


@pytest.fixture
def web(db):
    return make_channel(
        "web",
        pricing_policy="internal",
        require_if_match=True,
        checks={"stock": "stock.check"},
        required_checks_on_commit=["stock"],
        post_commit_directives=["payment.capture", "notification.order_committed"],
    )


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and "postgresql" not in engine:
            item.add_marker(skip_pg)
