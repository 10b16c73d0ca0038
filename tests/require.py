"""Services and tools a test needs. Without them the test is skipped on a developer's
machine, but fails under ``OMNIMAN_REQUIRE_SERVICES=1`` (CI, ``.ci/run``), so that a
run missing a service can never pass green by skipping what it did not test."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def required() -> bool:
    return os.environ.get("OMNIMAN_REQUIRE_SERVICES") == "1"


def need(condition: object, why: str) -> None:
    """Skip (or, when services are required, fail) unless ``condition``."""
    if not condition:
        if required():
            pytest.fail(f"{why} (OMNIMAN_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(why)


def need_module(name: str) -> ModuleType:
    """``pytest.importorskip`` that fails instead when services are required."""
    try:
        return importlib.import_module(name)
    except ImportError:
        need(False, f"{name} is not installed (pip install -e '.[dev]')")
        raise
