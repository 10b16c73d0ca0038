"""Scenario ``channels``: HTTP commit throughput with commits spread over 8 channels
against all on 1 channel, same server, same run, interleaved.

Each channel hands out its own stream positions under its own lock, so commits on
different channels do not queue behind one another; with one installation-wide lock
the two sides would be alike. The figure is the ratio of commits per second, spread /
one channel (above 1: channels no longer wait on each other)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import Any

from bench import env, loadgen
from bench.http import APP, CONNECTIONS, setup_db
from bench.server import Gunicorn
from bench.stats import interleave, ratio

CHANNELS = 8
# Commits per second the budget of sessions allows for, per variant (well above what
# two cores reach).
MAX_RPS = 1000
DB = "omniman_bench_channels"


def makers(token: str) -> dict[str, Callable[[int, int], bytes]]:
    """variant → request maker: each commit takes the next session of its channel. One
    channel: every connection commits on ``solo``; spread: connection t on ``c{t % 8}``."""
    counters = {code: itertools.count() for code in ["solo", *(f"c{n}" for n in range(CHANNELS))]}

    def commit(code: str) -> bytes:
        body = f'{{"channel_code": "{code}"}}'.encode()
        return loadgen.request("POST", f"/api/sessions/K-{next(counters[code])}/commit/", token=token, body=body)

    return {
        "one_channel": lambda t, i: commit("solo"),
        "spread": lambda t, i: commit(f"c{t % CHANNELS}"),
    }


def run_channels(args: argparse.Namespace) -> dict[str, Any]:
    repeats, seconds = (3, 1.5) if args.quick else (6, 4.0)
    per_channel = int(repeats * seconds * MAX_RPS) + 500
    env.recreate_db(DB)
    env.log(f"channels: loading fixtures ({CHANNELS + 1} channels x {per_channel} sessions)")
    token = setup_db(DB, "--sessions", "0", "--channels", str(CHANNELS), "--per-channel", str(per_channel))
    out: dict[str, Any] = {"connections": CONNECTIONS, "channels": CHANNELS, "repeats": repeats,
                           "seconds": seconds, "workers": 2}
    with Gunicorn(env.PORT_BASE + 3, APP, env.bench_env(db=DB)) as server:
        make = makers(token)
        for name in make:  # warm up both
            loadgen.run(server.port, make[name], seconds=0.3, connections=2)

        def variant(name: str) -> Callable[[int], dict[str, Any]]:
            return lambda _: loadgen.run(server.port, make[name], seconds=seconds, connections=CONNECTIONS)

        runs = interleave({name: variant(name) for name in make}, repeats)
    for name, rs in runs.items():
        out[name] = {
            "rps_median": sorted(r["rps"] for r in rs)[len(rs) // 2],
            "p99_ms_median": sorted(r["p99_ms"] for r in rs)[len(rs) // 2],
            "failures": sum(r["failures"] for r in rs),
        }
    out["rps_ratio"] = ratio([r["rps"] for r in runs["spread"]], [r["rps"] for r in runs["one_channel"]])
    out["p99_ratio"] = ratio([r["p99_ms"] for r in runs["spread"]], [r["p99_ms"] for r in runs["one_channel"]])
    out["runs"] = runs
    env.log(f"channels: commits/s spread over {CHANNELS} x{out['rps_ratio']['median']:.2f} "
            f"({out['spread']['rps_median']:.0f} vs {out['one_channel']['rps_median']:.0f} on one channel)")
    env.drop_db(DB)
    return out
