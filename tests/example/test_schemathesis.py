"""The OpenAPI document is exact, checked from outside: schemathesis (its CLI, every
check, positive and negative data) against the example project served on PostgreSQL,
in two runs. Zero failures and zero 5xx in each.

* The fuzz run: the examples, coverage and fuzzing phases, every operation of the
  served document, ``OMNIMAN_SCHEMATHESIS_EXAMPLES`` (default 100) examples each.
* The stateful run: the stateful phase alone, ``OMNIMAN_SCHEMATHESIS_STATEFUL_SCENARIOS``
  (default 100) scenarios through the document's links. It must walk whole chains of
  its own: sessions it created, modified and committed, and at least one of those
  orders transitioned (the hooks steer it there and log each of its calls).

Run alone: ``DATABASE_URL=postgres://... pytest tests/example/test_schemathesis.py -s``;
``OMNIMAN_SCHEMATHESIS_SEED`` (default 1) changes both runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.example.harness import ROOT, Example, example_env, fresh_database

pytestmark = [pytest.mark.postgres]

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("OMNIMAN_SCHEMATHESIS_EXAMPLES", "100"))
SEED = os.environ.get("OMNIMAN_SCHEMATHESIS_SEED", "1")
STATEFUL_SCENARIOS = int(os.environ.get("OMNIMAN_SCHEMATHESIS_STATEFUL_SCENARIOS", "100"))
# One worker: with several, schemathesis's coverage phase crashed once in CPython 3.11's
# ast module (a tool error, not an API failure), and it gained little on two cores.
WORKERS = os.environ.get("OMNIMAN_SCHEMATHESIS_WORKERS", "1")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Example, str, dict[str, str]]]:
    """The example on its own PostgreSQL database, seeded, served; an operator's token
    and the seeded sessions and orders."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    workdir = tmp_path_factory.mktemp("schemathesis")
    with fresh_database(url, "schemathesis") as database:
        ex = Example(workdir, env=example_env(DATABASE_URL=database, DEBUG="1"))
        ex.manage("migrate", "--noinput")
        ex.manage("omniman_seed")
        token = ex.manage("omniman_token", "fuzzer", "--operator").stdout.strip()
        ex.start()
        try:
            sessions, orders = [], []
            for channel, n in (("pos", 4), ("ifood", 2)):
                for i in range(n):
                    key = f"FUZZ-{channel.upper()}-{i}"
                    assert ex.request("POST", "/api/sessions/", {"channel_code": channel, "session_key": key},
                                      token).status == 201
                    ops = [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500, "line_id": "L1"}]
                    assert ex.request("POST", f"/api/sessions/{key}/modify/", {"channel_code": channel, "ops": ops},
                                      token).status == 200
                    sessions.append(key)
                    if i % 2:
                        done = ex.request("POST", f"/api/sessions/{key}/commit/", {"channel_code": channel}, token)
                        assert done.status == 201, done.body
                        orders.append(done.body["order_ref"])
            seeds = {"FUZZ_CHANNELS": "pos,web,ifood", "FUZZ_SESSIONS": ",".join(sessions),
                     "FUZZ_ORDERS": ",".join(orders)}
            yield ex, token, seeds
        finally:
            ex.stop()


def run_schemathesis(ex: Example, token: str, seeds: dict[str, str], phases: str, examples: int,
                     log: Path) -> str:
    """The schemathesis CLI against the served example; its whole output, once it has
    passed (exit 0, no 5xx, no traceback in the server's log)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{ex.url}/api/schema/?format=json",
        "--checks", "all", "--mode", "all", "--phases", phases, "--max-examples", str(examples), "--seed", SEED,
        "--header", f"Authorization: Token {token}",
        "--request-timeout", "10", "--no-color",
        # No shrinking: failures the hooks drop (a state rule) would otherwise be shrunk
        # first; a real failure still prints its curl.
        "--workers", WORKERS, "--no-shrink",
    ]
    env = {**os.environ, **seeds, "SCHEMATHESIS_HOOKS": "tests.example.schemathesis_hooks",
           "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "FUZZ_LOG": str(log)}
    started = time.monotonic()
    result = subprocess.run(command, cwd=ex.workdir, env=env, capture_output=True, text=True, timeout=1200)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    summary = output[output.rfind("SUMMARY"):] if "SUMMARY" in output else output[-3000:]
    print(f"\nschemathesis {phases}, seed {SEED}: {elapsed:.0f} s, exit {result.returncode}\n{summary}")  # noqa: T201
    assert result.returncode == 0, output[-20000:]
    assert " 5xx" not in summary and "Server error" not in output, summary
    server_log = (ex.workdir / "server.log").read_text(errors="replace")
    assert "Internal Server Error" not in server_log and "Traceback" not in server_log, server_log[-5000:]
    return output


def test_schemathesis_fuzzes_every_operation(served: tuple[Example, str, dict[str, str]]) -> None:
    ex, token, seeds = served
    output = run_schemathesis(ex, token, seeds, "examples,coverage,fuzzing", EXAMPLES, ex.workdir / "fuzz.jsonl")
    # Every operation of the served document (the payments app's included) was tested.
    document = ex.request("GET", "/api/schema/?format=json", token=token).body
    operations = sum(1 for item in document["paths"].values() for method in item
                     if method in {"get", "post", "put", "patch", "delete"})
    assert operations >= 16, operations
    assert f"Selected: {operations}/{operations}" in output and f"Tested: {operations}" in output, output[-3000:]


def test_schemathesis_stateful_phase_commits_and_transitions_its_own_orders(
    served: tuple[Example, str, dict[str, str]],
) -> None:
    ex, token, seeds = served
    walked = ex.workdir / "stateful.jsonl"
    output = run_schemathesis(ex, token, seeds, "stateful", STATEFUL_SCENARIOS, walked)
    assert re.search(r"Stateful", output), output[-3000:]
    chain = stateful_chain(walked, seeds)
    assert chain["created"] and chain["modified"] and chain["committed"] and chain["transitioned"], chain


def stateful_chain(walked: Path, seeds: dict[str, str]) -> dict[str, set[str]]:
    """What the stateful phase did with what it made itself, from the hooks' log: the
    sessions it created (not the seeded ones), modified and committed, and the orders of
    those commits it transitioned. Printed with the statuses per operation."""
    calls = [json.loads(line) for line in walked.read_text().splitlines()] if walked.exists() else []
    ok = [c for c in calls if 200 <= c["status"] < 300 and c["answer"]]

    def done(suffix: str) -> list[dict[str, Any]]:
        return [c for c in ok if c["operation"].startswith("POST ") and c["operation"].endswith(suffix)]

    seeded = set(seeds["FUZZ_SESSIONS"].split(","))
    created = {c["answer"]["session_key"] for c in done(" /api/sessions/")} - seeded
    modified = {c["path"]["session_key"] for c in done("/modify/")} & created
    committed = {c["answer"]["order_ref"] for c in done("/commit/") if c["path"]["session_key"] in modified}
    transitioned = {c["path"]["ref"] for c in done("/transition/")} & committed
    statuses: dict[str, set[int]] = {}
    for c in calls:
        statuses.setdefault(c["operation"], set()).add(c["status"])
    print(f"stateful: {len(calls)} calls; its own sessions: {len(created)} created, {len(modified)} "  # noqa: T201
          f"modified, {len(committed)} committed, {len(transitioned)} of their orders transitioned; "
          f"statuses {sorted((k, sorted(v)) for k, v in statuses.items())}")
    return {"created": created, "modified": modified, "committed": committed, "transitioned": transitioned}
