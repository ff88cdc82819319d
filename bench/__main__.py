"""`python -m bench`: run every benchmark (or `--only` some), print one table, write results.json.

Each benchmark runs in its own Python process, so its peak resident memory is its own and no
index, connection pool or server outlives it.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import DEFAULT, ROOT, TINY, Row, cpu_cores, log, self_peak_rss_mb

# Run order matters only for speed: matching leaves a seeded 100,000-item SQLite file in the
# cache that panels and pipeline copy instead of seeding again.
BENCHMARKS = ("matching", "panels", "pipeline", "backfill", "ace", "traffic", "scaling")
RESULTS = ROOT / "bench" / "results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--full", action="store_true",
                        help="also run the long steps (scaling to 1,000,000 items in one tenant)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the harness, not speed")
    parser.add_argument("--items", type=int,
                        help="items per tenant instead of 100,000 (quick provisional runs; targets are for 100,000)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated databases (sqlite, postgresql) for every benchmark; default: "
                             "each benchmark's own (see bench/README.md)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def selected(only: str | None) -> list[str]:
    """The benchmarks to run, in the canonical order; unknown names are an error."""
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return [n for n in BENCHMARKS if n in names]


def run_child(args: argparse.Namespace) -> int:
    """Run one benchmark in this process and write its rows as JSON."""
    # SIGTERM (or SIGINT, which background shells ignore) unwinds, so every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = TINY if args.tiny else DEFAULT
    if args.items:
        size = dataclasses.replace(size, items=args.items)
    module = importlib.import_module(f"bench.{args.child}")
    payload: dict[str, Any] = {"rows": [], "error": None}
    started = time.perf_counter()
    try:
        backends = tuple(args.backends.split(",")) if args.backends else module.DEFAULT_BACKENDS
        rows = module.run(size, backends=backends, full=args.full)
        rows.append(Row(args.child, "peak resident memory (benchmark process)",
                        round(self_peak_rss_mb(), 1), "MiB",
                        note="the driver process; servers' memory is reported in their own rows"))
        payload["rows"] = [r.as_dict() for r in rows]
    except BaseException as exc:  # report, do not hide: the table shows the failure
        traceback.print_exc()
        payload["error"] = f"{type(exc).__name__}: {exc}"
    payload["seconds"] = time.perf_counter() - started
    args.child_out.write_text(json.dumps(payload, default=str))
    return 0 if payload["error"] is None else 1


def run_one(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """Run a benchmark in a child process; a failure becomes a failed row."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    command = [sys.executable, "-m", "bench", "--child", name, "--child-out", str(out)]
    command += ["--backends", args.backends] if args.backends else []
    command += ["--tiny"] if args.tiny else []
    command += ["--items", str(args.items)] if args.items else []
    command += ["--full"] if args.full else []
    started = time.perf_counter()
    log(f"=== {name} ===")
    proc = subprocess.run(command, cwd=ROOT)
    elapsed = time.perf_counter() - started
    try:
        payload = json.loads(out.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        payload = {}
    finally:
        out.unlink(missing_ok=True)
    rows = payload.get("rows") or []
    if proc.returncode != 0 or payload.get("error"):
        error = payload.get("error") or f"exited with status {proc.returncode}"
        rows.append(Row(name, "benchmark run", None, "", passed=False, note=f"FAILED: {error}").as_dict())
    log(f"=== {name} done in {elapsed:.0f} s ===")
    return rows, elapsed


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return {"cores": os.cpu_count(), "usable_cores": cpu_cores(), "cpu": model,
            "memory_gib": round(memory, 1), "load_avg_1m_at_start": round(load, 2),
            "python": platform.python_version(), "platform": platform.platform()}


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


def fmt_value(row: dict[str, Any]) -> str:
    value = row.get("value")
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def render_table(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """One plain-text table of every figure, with target and verdict."""
    verdict = {True: "pass", False: "FAIL", None: ""}
    header = ("benchmark", "figure", "value", "unit", "target", "result")
    lines = [(r["benchmark"], r["name"], fmt_value(r), r["unit"], r["target"], verdict[r["passed"]])
             for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    def line(cells: tuple) -> str:
        return "  ".join(str(c).ljust(w) if i != 2 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=False))).rstrip()
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [f"Inflow benchmarks  commit {info['commit']}  {info['machine']['cores']} cores "
           f"({info['machine']['cpu']})  load at start {info['machine']['load_avg_1m_at_start']}  "
           f"size {info['size']}", rule, line(header), rule]
    out += [line(cells) for cells in lines]
    passed = sum(1 for r in rows if r["passed"] is True)
    failed = sum(1 for r in rows if r["passed"] is False)
    out += [rule, f"{passed} targets met, {failed} missed, {len(rows)} figures"]
    notes = [f"  {r['benchmark']} / {r['name']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    names = selected(args.only)
    size = "tiny" if args.tiny else "default"
    size += f", {args.items:,} items" if args.items else ""
    info = {"commit": git_commit(), "machine": machine(), "size": size,
            "full": args.full, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "only": names}
    rows: list[dict[str, Any]] = [Row("machine", "CPU cores", info["machine"]["cores"], "cores",
                                      note=info["machine"]["cpu"]).as_dict()]
    seconds: dict[str, float] = {}
    for name in names:
        bench_rows, seconds[name] = run_one(name, args)
        rows += bench_rows
    info["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    table = render_table(rows, info)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**info, "rows": rows}, indent=2, default=str))
    log(f"wrote {args.out}")
    return 0 if all(r["passed"] is not False or r["name"] != "benchmark run" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
