"""The table, the JSON file and the chart of one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def _f(x: Any, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def cpu_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float | None:
    """The median over rounds of a's server CPU per request over b's."""
    import statistics

    pairs = [(x.get("server_cpu_us_per_req"), y.get("server_cpu_us_per_req")) for x, y in zip(a, b, strict=True)]
    ratios = [x / y for x, y in pairs if x and y]
    return statistics.median(ratios) if ratios else None


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(scenario, case, figure, goal, verdict) for every headline figure."""
    out: list[tuple[str, str, str, str, str]] = []
    sc = results.get("scenarios", {})
    for vendor, data in sc.get("inproc", {}).items():
        for case, c in data["cases"].items():
            q = c["queries"]
            out.append((f"inproc {vendor}", case,
                        f"x{_f(c['ratio']['median'])} (min x{_f(c['ratio']['min'])}) "
                        f"{c['us']['kernel']['median']:.0f} vs {c['us']['baseline']['median']:.0f} us; "
                        f"SQL {q['kernel']} vs {q['baseline']}", "", ""))
        for req, n in data.get("api_queries", {}).items():
            out.append((f"api SQL {vendor}", req, f"{n} statements", "", ""))
        s = data.get("modify_500_vs_1_lines")
        if s:
            out.append((f"inproc {vendor}", "modify 500 vs 1 lines",
                        f"x{_f(s['kernel'])} (raw ORM x{_f(s['baseline'])})", "<= 1.2",
                        "ok" if s["kernel"] <= 1.2 else "BELOW"))
    http = sc.get("http", {})
    for kind in ("gthread", "sync"):
        for case, c in http.get(kind, {}).items():
            if "rps_ratio" not in c:
                out.append((f"http {kind}", case, f"{c['omniman']['rps_median']:.0f} req/s (bare only)", "", ""))
                continue
            ok = c["rps_ratio"]["median"] >= 0.8 and c["p99_ratio"]["median"] <= 1.5
            fails = c["omniman"]["failures"] + c["bare"]["failures"]
            out.append((f"http {kind}", case,
                        f"req/s x{_f(c['rps_ratio']['median'])} ({c['omniman']['rps_median']:.0f} vs "
                        f"{c['bare']['rps_median']:.0f}), p99 x{_f(c['p99_ratio']['median'])}"
                        + (f", {fails} failures" if fails else ""),
                        ">= 0.8, <= 1.5", "ok" if ok and not fails else "BELOW"))
    for case, c in sc.get("scale", {}).items():
        if isinstance(c, dict) and "cost_ratio" in c:
            out.append(("scale", f"{case} ({c['b']} vs {c['a']})", f"cost x{_f(c['cost_ratio']['median'])}"
                        f" (min x{_f(c['cost_ratio']['min'])})", "<= 1.2",
                        "ok" if c["cost_ratio"]["median"] <= 1.2 and not c["failures"] else "BELOW"))
    d = sc.get("directives")
    if d:
        for key, case in (("throughput", "throughput"),
                          ("throughput_durable", "throughput, DIRECTIVE_ASYNC_COMMIT off")):
            t = d.get(key)
            if t:
                out.append(("directives", case, f"x{_f(t['ratio']['median'])} ({t['omniman_per_s']:.0f} vs "
                            f"{t['raw_per_s']:.0f} jobs/s)", ">= 0.5" if key == "throughput" else "",
                            ("ok" if t["ratio"]["median"] >= 0.5 else "BELOW") if key == "throughput" else ""))
        lat = d["latency"]
        out.append(("directives", "commit -> handler start",
                    f"p50 {lat['omniman']['p50_ms']:.1f} ms, p99 {lat['omniman']['p99_ms']:.1f} ms "
                    f"(raw task p50 {lat['raw']['p50_ms']:.1f}, p99 {lat['raw']['p99_ms']:.1f})", "", ""))
        if "commit_call" in lat:
            out.append(("directives", "of which the commit_session call",
                        f"p50 {lat['commit_call']['p50_ms']:.1f} ms, p99 {lat['commit_call']['p99_ms']:.1f} ms",
                        "", ""))
    pr = sc.get("profile", {}).get("per_request", {})
    for name in ("modify", "get", "commit"):
        if f"{name}-api" in pr:
            a, b = pr[f"{name}-api"]["cpu_us_per_req"], pr[f"{name}-bare"]["cpu_us_per_req"]
            out.append(("profile", f"{name} CPU per request", f"x{_f(a / b)} ({a:.0f} vs {b:.0f} us, API vs bare)",
                        "", ""))
    si = sc.get("silk")
    if si:
        out.append(("silk", "modify, silk on vs off", f"x{_f(si['ratio']['median'])} ({si['on_ms']['median']:.1f} "
                    f"vs {si['off_ms']['median']:.1f} ms), p95 x{_f(si['ratio']['p95'])}", "", ""))
    pa = sc.get("payload")
    if pa:
        for case, c in pa["sizes"].items():
            out.append(("payload", f"{case} gzipped", f"{c['plain_bytes'] / 1000:.1f} -> {c['gzip_bytes'] / 1000:.1f} KB"
                        f" ({100 * c['ratio']:.1f} %)", "", ""))
        g = pa["gzip_one_page"]
        out.append(("payload", "gzip one sessions page", f"{g['us']['median']:.0f} us (min {g['us']['min']:.0f})",
                    "", ""))
        r = pa["render_500_lines"]
        out.append(("payload", "render 500 lines", f"orjson {r['us']['orjson']['median']:.0f} us vs DRF JSONRenderer "
                    f"{r['us']['drf_json']['median']:.0f} us (x{_f(r['ratio']['median'])})", "", ""))
    for vendor, data in sc.get("imports", {}).items():
        for case, c in data["cases"].items():
            r, q = c["paired_ratio"], c["queries"]
            out.append((f"imports {vendor}", f"{case}: one call vs create+modify+commit",
                        f"x{_f(r['median'])} (rounds {_f(r['min'])}-{_f(r['max'])}; "
                        f"{c['us']['one_call']['median'] / 1000:.1f} vs {c['us']['three_calls']['median'] / 1000:.1f}"
                        f" ms); SQL {q['one_call']} vs {q['three_calls']}", "", ""))
    pd = sc.get("prod", {})
    for case, c in pd.get("vs_drfmin", {}).items():
        r, p = c["rps_ratio"], c["p99_ratio"]
        ok = r["median"] >= 1.0 and p["median"] <= 1.2
        fails = c["example"]["failures"] + c["drfmin"]["failures"]
        out.append(("prod vs drfmin", case,
                    f"req/s x{_f(r['median'])} (rounds {_f(r['min'])}-{_f(r['max'])}; {c['example']['rps_median']:.0f}"
                    f" vs {c['drfmin']['rps_median']:.0f}), p99 x{_f(p['median'])}, server CPU/req "
                    f"x{_f(cpu_ratio(c['runs']['example'], c['runs']['drfmin']))}"
                    + (f", {fails} failures" if fails else ""),
                    ">= 1.0, <= 1.2", "ok" if ok and not fails else "BELOW"))
        if "drfmin_prepared" in c:
            r, p = c["rps_ratio_prepared"], c["p99_ratio_prepared"]
            out.append(("prod vs drfmin prepared", case,
                        f"req/s x{_f(r['median'])} (rounds {_f(r['min'])}-{_f(r['max'])}; "
                        f"{c['example']['rps_median']:.0f} vs {c['drfmin_prepared']['rps_median']:.0f}), p99 "
                        f"x{_f(p['median'])}, server CPU/req "
                        f"x{_f(cpu_ratio(c['runs']['example'], c['runs']['drfmin_prepared']))}", "", ""))
    op = pd.get("options")
    if op:
        for side in ("shop_options", "shop_plain"):
            c = op[f"{side}_vs_pos_plain"]
            fails = op[side]["failures"]
            out.append(("prod options", f"{side} vs pos_plain (add_line)",
                        f"req/s x{_f(c['rps_ratio']['median'])} ({op[side]['rps_median']:.0f} vs "
                        f"{op['pos_plain']['rps_median']:.0f}), p99 x{_f(c['p99_ratio']['median'])}, server CPU/req "
                        f"x{_f(cpu_ratio(op['runs'][side], op['runs']['pos_plain']))}"
                        + (f", {fails} failures" if fails else ""), "", ""))
    for case, c in sc.get("prod-profile", {}).get("cases", {}).items():
        out.append(("prod profile", case, f"{c['requests']} requests profiled, {c['file']}", "", ""))
    ch = sc.get("channels")
    if ch:
        r, fails = ch["rps_ratio"], ch["spread"]["failures"] + ch["one_channel"]["failures"]
        out.append(("channels", f"commit on {ch['channels']} channels vs 1",
                    f"req/s x{_f(r['median'])} (min x{_f(r['min'])}; {ch['spread']['rps_median']:.0f} vs "
                    f"{ch['one_channel']['rps_median']:.0f}), p99 x{_f(ch['p99_ratio']['median'])}"
                    + (f", {fails} failures" if fails else ""), "> 1", "ok" if r["median"] > 1 and not fails
                    else "BELOW"))
    lo = sc.get("locust")
    if lo:
        out.append(("locust", "seed workload", f"{lo['rps']:.0f} req/s, {lo['failures']} failures "
                    f"of {lo['requests']}", "0 failures", "ok" if lo["failures"] == 0 else "BELOW"))
    return out


def table(results: dict[str, Any]) -> str:
    lines = [f"omniman bench {results['date']} ({results['mode']}), {results['machine']['cores']} cores "
             f"{results['machine']['cpu']}, Python {results['machine']['python']}, "
             f"PostgreSQL {results['machine']['postgresql']}"]
    data = rows(results)
    widths = [max(len(r[i]) for r in data) if data else 0 for i in range(5)]
    for r in data:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for name, err in results.get("errors", {}).items():
        lines.append(f"{name}: FAILED: {err.strip().splitlines()[-1]}")
    notes = results.get("scenarios", {}).get("scale", {}).get("note")
    if notes:
        lines.append(f"note: {notes}")
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, sort_keys=True, default=str)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    stamp = results["date"][:10]
    if out.name == "latest.json":
        shutil.copyfile(out, out.with_name(f"{stamp}.json"))
    try:
        from bench import chart

        chart.draw(results, out.with_suffix(".png"))
    except Exception as exc:  # a chart never loses the numbers
        print(f"chart failed: {exc!r}")


def rst(results: dict[str, Any]) -> str:
    """The table as reStructuredText (for docs/guide/bench.rst)."""
    data = [("Scenario", "Case", "Figure", "Goal", "")] + rows(results)
    widths = [max(len(r[i]) for r in data) for i in range(5)]
    sep = "  ".join("=" * w for w in widths)
    lines = [sep, "  ".join(v.ljust(w) for v, w in zip(data[0], widths, strict=True)).rstrip(), sep]
    for r in data[1:]:
        lines.append("  ".join((v or "..").ljust(w) if i == 0 else v.ljust(w)
                               for i, (v, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append(sep)
    return "\n".join(lines)


def docs_section(results: dict[str, Any]) -> str:
    """The "Measured figures" section of docs/guide/bench.rst."""
    m = results["machine"]
    dates = results.get("scenario_dates")
    when = results["date"] if not dates else ", ".join(f"{k} {v}" for k, v in sorted(dates.items()))
    return "\n".join([
        f"Run of {when} ({results['mode']} mode), on {m['cores']} cores of an {m['cpu']}, "
        f"{m['os']}, Python {m['python']}, Django {m['django']}, PostgreSQL {m['postgresql']}, "
        f"Redis {m['redis']}; load average at start {', '.join(map(str, m['loadavg_at_start']))} "
        "(the machine was shared with other builds: absolute times are several times "
        "what a quiet machine gives, ratios are what to read). ``xR`` is omniman over its "
        "baseline: time in process (lower is better), requests per second over HTTP (higher "
        "is better), cost for scale (lower is better). Median over the repeats, minimum in "
        "brackets.",
        "",
        rst(results),
    ])


if __name__ == "__main__":
    import sys

    loaded = json.loads(Path(sys.argv[1]).read_text())
    print(docs_section(loaded) if "--rst" in sys.argv else table(loaded))
