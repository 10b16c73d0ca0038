"""``python -m bench [--quick] [--only SCENARIO ...]``: set up, measure, print, save.

Every figure is a ratio to a baseline measured in the same run, interleaved, reduced
to min and median over repeats. Results go to ``bench/results/latest.json`` (and a
dated copy), the chart to ``bench/results/latest.png``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import env

SCENARIOS = ["inproc", "http", "scale", "directives", "locust", "explain", "profile", "silk", "payload", "prod",
             "prod-profile", "imports", "channels"]
# Scenarios on SQLite only: they need no migrated PostgreSQL template.
SQLITE_ONLY = {"silk", "payload"}


def run_inproc(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="omniman_bench_") as tmp:
        targets = {
            "sqlite": env.bench_env(sqlite=str(Path(tmp) / "bench.sqlite3")),
            "postgresql": env.bench_env(db="omniman_bench_inproc"),
        }
        env.recreate_db("omniman_bench_inproc")
        for vendor, e in targets.items():
            env.log(f"inproc on {vendor}")
            cmd = [sys.executable, "-m", "bench.inproc", *(["--quick"] if args.quick else [])]
            proc = subprocess.run(cmd, cwd=env.ROOT, env=e, stdout=subprocess.PIPE, check=True)
            out[vendor] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    env.drop_db("omniman_bench_inproc")
    return out


def run_imports(args: argparse.Namespace) -> dict[str, Any]:
    """One-call imports against create, modify and commit (``bench.imports``), on each database."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="omniman_bench_imports_") as tmp:
        env.recreate_db("omniman_bench_imports")
        targets = {
            "sqlite": env.bench_env(sqlite=str(Path(tmp) / "imports.sqlite3")),
            "postgresql": env.bench_env(db="omniman_bench_imports"),
        }
        for vendor, e in targets.items():
            env.log(f"imports on {vendor}")
            cmd = [sys.executable, "-m", "bench.imports", *(["--quick"] if args.quick else [])]
            proc = subprocess.run(cmd, cwd=env.ROOT, env=e, stdout=subprocess.PIPE, check=True)
            out[vendor] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    env.drop_db("omniman_bench_imports")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (under 3 minutes)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--out", default=None, help="results file (default bench/results/latest.json)")
    parser.add_argument("--large", type=int, default=None,
                        help="rows in the large scale database (default 1,000,000; 100,000 with --quick)")
    parser.add_argument("--prod-case", dest="prod_only", action="append",
                        choices=["add_line_spread", "set_qty_hot", "get", "get_304", "options"],
                        help="with --only prod or prod-profile: run only these cases")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other scenarios of the existing results file (each keeps its own date)")
    args = parser.parse_args(argv)
    from bench import channels, http, prod, report, scenarios

    chosen = args.only or SCENARIOS
    started = time.time()
    env.ensure_redis()
    needs_pg = not SQLITE_ONLY.issuperset(chosen)
    if needs_pg:
        env.log("migrating the template database")
        env.make_template()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": env.machine(),
        "scenarios": {},
        "errors": {},
    }
    runners = {
        "inproc": run_inproc,
        "http": http.run_http,
        "scale": http.run_scale,
        "directives": scenarios.run_directives,
        "locust": scenarios.run_locust,
        "explain": scenarios.run_explain,
        "profile": scenarios.run_profile,
        "silk": scenarios.run_silk,
        "payload": scenarios.run_payload,
        "prod": prod.run_prod,
        "prod-profile": prod.run_prod_profile,
        "imports": run_imports,
        "channels": channels.run_channels,
    }
    for name in chosen:
        t0 = time.time()
        try:
            results["scenarios"][name] = runners[name](args)
        except Exception as exc:  # one broken scenario must not lose the others
            env.log(f"{name} failed: {exc!r}")
            results["errors"][name] = "".join(traceback.format_exception(exc))[-4000:]
        env.log(f"{name} took {time.time() - t0:.0f} s")
    if needs_pg:
        env.drop_db(env.TEMPLATE)
    results["seconds"] = round(time.time() - started, 1)
    out = Path(args.out) if args.out else env.results_dir(args.quick) / "latest.json"
    if args.merge and out.exists():
        previous = json.loads(out.read_text())
        dates = previous.get("scenario_dates") or dict.fromkeys(previous["scenarios"], previous["date"])
        dates.update(dict.fromkeys(results["scenarios"], results["date"]))
        previous["scenarios"].update(results["scenarios"])
        previous["errors"] = {**{k: v for k, v in previous.get("errors", {}).items() if k not in chosen},
                              **results["errors"]}
        previous["scenario_dates"] = dates
        previous.setdefault("machines", {})[results["date"]] = results["machine"]
        results = previous
    report.write(results, out)
    print(report.table(results))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
