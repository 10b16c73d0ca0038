"""Scenarios 4 and 5 and the EXPLAIN plans."""

from __future__ import annotations

import argparse
from typing import Any


def run_directives(args: argparse.Namespace) -> dict[str, Any]:
    raise NotImplementedError


def run_locust(args: argparse.Namespace) -> dict[str, Any]:
    raise NotImplementedError


def run_explain(args: argparse.Namespace) -> dict[str, Any]:
    raise NotImplementedError
