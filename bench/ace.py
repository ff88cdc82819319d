"""Side by side: Inflow's real issue panel vs atlassian-connect-express's hello-world panel.

Both servers run on loopback, one at a time, pinned to the same single core (`taskset`) with one
worker process each (node is one process; gunicorn gets `--workers 1` with its configured threads).
The load generators run on the other core:
- wrk (closed loop, Debian's wrk 4.1) with a Lua script that rotates through a pool of signed
  iframe URLs (long-expiry JWTs with the correct qsh for each URL) gives the maximum requests/s;
- bench/openloop.py (a small Python open-loop generator; wrk2 is not in Debian) sends the same
  URLs at a constant 200 requests/s and measures each latency from the request's due time.
ACE's tenant is written into its sequelize (sqlite3) store directly before it listens, as its
/installed hook would store it; Inflow's tenant is the seeded one, its host the fake site.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import corpus
from bench.common import ROOT, Row, Size, log, percentiles
from bench.http import Client, adopt_site, signed_path, start_fake_site
from bench.openloop import open_loop
from bench.seed import TenantInfo, fresh_dir, open_database, seeded_database
from bench.servers import bench_env, free_port, gunicorn, pin, stop_process, wait_for_port

NAME = "ace"
DEFAULT_BACKENDS = ("sqlite",)
PEER = ROOT / "bench" / "peers" / "ace"
CONNECTIONS = 16
INFLOW_PANELS = ("reuse", "contributors")


def run(size: Size, backends: tuple[str, ...] = DEFAULT_BACKENDS, **_: object) -> list[Row]:
    """Both servers under the same load; rows for each and the ratio."""
    ensure_wrk()
    ensure_peer_modules()
    server_core, load_core = _cores()
    if backends[0] != "sqlite":
        raise ValueError("the side-by-side runs on the embedded default (sqlite) only")
    url = f"sqlite:///{fresh_dir('ace-sqlite') / 'inflow.db'}"
    tenant = seeded_database(url, size.items)
    site = start_fake_site(size.items)
    if load_core is not None:
        os.sched_setaffinity(0, {int(load_core)})  # the fake site and generators stay off the server core
    try:
        db = open_database(url, create=False)
        tenant = adopt_site(db, tenant, site)
        db.dispose()
        results = {"ace": _measure_ace(size, server_core, load_core)}
        env = {"DATABASE_URL": url, "INFLOW_BASE_URL": "https://inflow.bench", "INFLOW_LOG_LEVEL": "warning",
               "INFLOW_AUTH_SERVER_URL": site.url}
        with gunicorn(env, workers=1, cores=server_core) as (base, proc):
            for panel in INFLOW_PANELS[:1] if size.tiny else INFLOW_PANELS:
                paths = _inflow_paths(tenant, panel, size)
                _warm(base, paths)
                results[f"inflow {panel}"] = _load(base, paths, size, load_core, _worker_pid(proc))
        return _rows(results, size, server_core)
    finally:
        site.stop()


def _cores() -> tuple[str | None, str | None]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return str(cores[-1]), str(cores[0])


def ensure_wrk() -> None:
    """Install Debian's wrk when it is missing (root with apt-get only)."""
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk from Debian")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")


def ensure_peer_modules() -> None:
    """`npm ci` the ACE peer into its git-ignored node_modules when missing or stale."""
    stamp = PEER / "node_modules" / ".installed"
    lock = PEER / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    log("installing the ACE peer from npm (sqlite3 may build from source: about a minute)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--omit=optional"], cwd=PEER, check=True)
    stamp.touch()


def _ace_paths(tenant: dict, size: Size) -> list[str]:
    fake = TenantInfo(0, tenant["clientKey"], tenant["sharedSecret"], tenant["baseUrl"])
    return [signed_path(fake, "/hello-world", _issue_query(i, size.items), sub=f"bench-viewer-{i % 20}",
                        ttl=7200) for i in range(size.ace_urls)]


def _inflow_paths(tenant: TenantInfo, panel: str, size: Size) -> list[str]:
    """A pool of signed URLs (distinct issues and viewers), each token valid for two hours."""
    return [signed_path(tenant, f"/jira/panels/{panel}", _issue_query(i, size.items),
                        sub=f"bench-viewer-{i % 20}", ttl=7200) for i in range(size.ace_urls)]


def _issue_query(i: int, items: int) -> dict[str, str]:
    index = random.Random(f"ace:{i}").randrange(items)
    project = corpus.PROJECTS[index % len(corpus.PROJECTS)]
    return {"issueKey": f"{project}-{index + 1}", "projectKey": project}


def _measure_ace(size: Size, server_core: str | None, load_core: str | None) -> dict:
    tenant = {"key": "io.inflow.bench.ace-peer", "clientKey": "bench-ace-client",
              "sharedSecret": os.urandom(24).hex(), "baseUrl": "https://bench.atlassian.net",
              "productType": "jira", "eventType": "installed"}
    port = free_port()
    store = Path(tempfile.mkdtemp(prefix="ace-")) / "store.db"
    env = {**os.environ, "PORT": str(port), "ACE_STORE": str(store), "ACE_TENANT": json.dumps(tenant),
           "NODE_ENV": "production"}
    logfile = open(fresh_dir("ace-peer") / "node.log", "wb")
    proc = subprocess.Popen(pin(["node", "app.js"], server_core), cwd=PEER, env=env, stdout=logfile,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = _ace_paths(tenant, size)
        _warm(base, paths)
        return _load(base, paths, size, load_core, proc.pid)
    finally:
        stop_process(proc)
        logfile.close()
        shutil.rmtree(store.parent, ignore_errors=True)


def _warm(base: str, paths: list[str]) -> None:
    """Every URL once (index build, JIT, permission cache), and a check that each answers 200."""
    client = Client(base, timeout=1800)  # Inflow's first panel builds the tenant's index
    for path in paths:
        status, body, _ = client.get(path)
        if status != 200:
            raise RuntimeError(f"{base}{path.split('?')[0]} answered {status}: {body[:300]!r}")
    client.close()


def _worker_pid(proc: subprocess.Popen) -> int:
    from bench.common import children_of

    pids = children_of(proc.pid)
    return pids[0] if pids else proc.pid


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(base: str, paths: list[str], size: Size, load_core: str | None, server_pid: int) -> dict:
    """wrk at full speed, then the open-loop generator at the fixed rate."""
    cpu0, t0 = _cpu_seconds(server_pid), time.perf_counter()
    closed = _wrk(base, paths, size.ace_seconds, load_core)
    closed["server_cpu_share"] = (_cpu_seconds(server_pid) - cpu0) / (time.perf_counter() - t0)
    fixed = open_loop(base, paths, rate=size.ace_rate, seconds=size.ace_seconds)
    pct = percentiles(fixed.latencies)
    return {"wrk": closed, "open_loop": {"rate": size.ace_rate, "sent": fixed.sent,
                                         "completed": len(fixed.latencies), "non_2xx": fixed.non_2xx,
                                         "errors": fixed.errors, "connections": fixed.max_connections,
                                         **{k: v * 1000 for k, v in pct.items()}}}


LUA = """-- generated by bench/ace.py: rotate through signed URLs (long-expiry JWTs, qsh per URL)
local paths = {
%s
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"socket_errors":%%d,"non_2xx":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _wrk(base: str, paths: list[str], seconds: int, load_core: str | None) -> dict:
    script = fresh_dir(f"wrk-{time.time_ns()}") / "panel.lua"
    script.write_text(LUA % ",\n".join(f"  [[{p}]]" for p in paths))
    command = pin(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                   "-s", str(script), base], load_core)
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, env=bench_env())
    shutil.rmtree(script.parent, ignore_errors=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    data = json.loads(line[len("WRK_JSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def _rows(results: dict, size: Size, server_core: str | None) -> list[Row]:
    where = f"each pinned to core {server_core}" if server_core else "not pinned (one core)"
    rows: list[Row] = []
    for name, r in results.items():
        w, o = r["wrk"], r["open_loop"]
        label = "ACE hello panel" if name == "ace" else f"Inflow {name.split()[1]} panel"
        rows.append(Row(NAME, f"{label}: throughput (wrk, {CONNECTIONS} connections)", round(w["rps"], 1),
                        "requests/s", note=f"{where}, 1 worker process; p50 {w['p50_us'] / 1000:.1f} ms, "
                        f"p99 {w['p99_us'] / 1000:.1f} ms; non-2xx {w['non_2xx']}, socket errors "
                        f"{w['socket_errors']}; server used {w['server_cpu_share']:.0%} of a core",
                        extra=w))
        judged = name == "inflow reuse"
        clean = o["non_2xx"] == 0 and o["errors"] == 0
        rows.append(Row(NAME, f"{label}: p99 at {o['rate']} requests/s (open loop)", round(o["p99"], 1), "ms",
                        target="< 100 ms" if judged else "",
                        passed=(o["p99"] < 100 and clean) if judged else None,
                        note=f"p50 {o['p50']:.1f} ms, p95 {o['p95']:.1f} ms; {o['completed']}/{o['sent']} "
                             f"completed, non-2xx {o['non_2xx']}, errors {o['errors']}", extra=o))
    ace_rps = results["ace"]["wrk"]["rps"]
    for panel in (p for p in INFLOW_PANELS if f"inflow {p}" in results):
        ratio = results[f"inflow {panel}"]["wrk"]["rps"] / ace_rps if ace_rps else 0.0
        judged = panel == "reuse"
        rows.append(Row(NAME, f"Inflow {panel} panel / ACE hello panel throughput", round(ratio, 2), "x",
                        target=">= 1.0x" if judged else "", passed=(ratio >= 1.0) if judged else None,
                        note=f"same machine, one run, same core, one worker process each; Inflow tenant has "
                             f"{size.items:,} items" + ("" if judged else " (contributors: no matching)")))
    return rows
