"""Scenarios 4 and 5 and the EXPLAIN plans, each in processes of their own."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from bench import env


def _module(module: str, e: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=env.ROOT, env=e,
                          stdout=subprocess.PIPE, check=True)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def run_directives(args: argparse.Namespace) -> dict[str, Any]:
    env.recreate_db("omniman_bench_directives")
    e = env.bench_env(db="omniman_bench_directives", BENCH_DIRECTIVES="celery")
    out = _module("bench.dirbench", e, *(["--quick"] if args.quick else []))
    env.drop_db("omniman_bench_directives")
    return out


def run_locust(args: argparse.Namespace) -> dict[str, Any]:
    raise NotImplementedError


def run_explain(args: argparse.Namespace) -> dict[str, Any]:
    raise NotImplementedError
