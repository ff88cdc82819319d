"""Side by side: Inflow's real issue panel vs atlassian-connect-express's hello-world panel.

Both servers run on loopback, one at a time, pinned to the same single core (`taskset`) with one
worker process each (node is one process; Inflow's web server gets one worker with its configured threads).
The load generators run on the other core:
- wrk (closed loop, Debian's wrk 4.1) with a Lua script that rotates through a pool of signed
  iframe URLs (long-expiry JWTs with the correct qsh for each URL) gives the maximum requests/s;
- bench/openloop.py (a small Python open-loop generator; wrk2 is not in Debian) sends the same
  URLs at a constant 200 requests/s and measures each latency from the request's due time.
ACE and each of Inflow's three issue panels are measured in 3 alternating rounds (ACE, reuse,
experts, contributors) and each panel's median ratio to that round's ACE is the one judged: other
load on the machine moves either side by a third between runs.
Then 3 more rounds by the issue's own protocol: each server as deployed (`inflow web` with its
configured workers; node's one process), `wrk -t2 -c32`, nothing pinned.
ACE's tenant is written into its sequelize (sqlite3) store directly before it listens, as its
/installed hook would store it; Inflow's tenant is the seeded one, its host the fake site.

What each side does per request (the same JWT work: HS256 signature, exp/iat, qsh of the URL):
- ACE: reads the tenant from its store (a sequelize query, no cache), verifies, signs a session
  token for the response header, sends a fixed page.
- Inflow: reads the tenant from a 10 s per-process cache, verifies, reads the panel's state in
  one query and serves the rendered panel from its fragment cache when nothing it shows changed
  (in front of Flask, `plugin/views/front.py`), and records the view's adoption events; else
  Flask renders it (stored suggestions re-checked against the viewer's permissions, cached 60 s).
Neither writes an access log (ACE's peer has no request logger; Inflow runs with
INFLOW_ACCESS_LOG=""). The pooled issues get stored suggestions first, as production's fill after
a backfill leaves every item; one more Inflow run with INFLOW_PANEL_CACHE=0 shows what every
view costs when rendered afresh. Requests per CPU-second of the server are reported too: on a machine
shared with other work they compare the two more fairly than requests per second.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import corpus
from bench.common import ROOT, Row, Size, log, percentiles
from bench.http import Client, adopt_site, signed_path, start_fake_site
from bench.openloop import open_loop
from bench.seed import TenantInfo, fresh_dir, open_database, seeded_database
from bench.servers import (
    bench_env,
    free_port,
    pin,
    stop_process,
    wait_for_port,
    web,
    web_config,
)

NAME = "ace"
DEFAULT_BACKENDS = ("sqlite",)
PEER = ROOT / "bench" / "peers" / "ace"
CONNECTIONS = 16
# The issue's own measurement: wrk -t2 -c32 on loopback against each server as it is deployed
# (Inflow's web server with its configured workers, ACE's one node process), nothing pinned.
DEPLOYED_WRK = (2, 32)
INFLOW_PANELS = ("reuse", "experts", "contributors")  # Jira loads every one on each issue view
ROUNDS = 3  # alternating ACE / Inflow rounds; each panel's judged ratio is its median round's
TARGET_RATIO = 1.5  # each panel against ACE's hello panel, same run
TARGET_P99_MS = 100  # every panel at 200 requests/s, open loop


def run(size: Size, backends: tuple[str, ...] = DEFAULT_BACKENDS, **_: object) -> list[Row]:
    """Both servers under the same load; rows for each and the ratio."""
    ensure_wrk()
    ensure_peer_modules()
    server_core, load_core = _cores()
    every_core = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
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
        stored = store_suggestions(db, tenant.id, [_issue_query(i, size.items)["issueKey"]
                                                   for i in range(size.ace_urls)])
        db.dispose()
        # No access log: the ACE peer writes none either (express without a request logger).
        env = {"DATABASE_URL": url, "INFLOW_BASE_URL": "https://inflow.bench", "INFLOW_LOG_LEVEL": "warning",
               "INFLOW_AUTH_SERVER_URL": site.url, "INFLOW_ACCESS_LOG": ""}
        results = _paired_rounds(env, tenant, size, server_core, load_core)
        deployed = _deployed_rounds(env, tenant, size, every_core)
        if not size.tiny:  # the same panel with every render done afresh: what a first view costs
            results["inflow reuse uncached"] = _measure_inflow({**env, "INFLOW_PANEL_CACHE": "0"}, tenant,
                                                               "reuse", size, server_core, load_core,
                                                               open_loop_too=False)
        return _rows(results, size, server_core, stored) + _deployed_rows(deployed)
    finally:
        site.stop()


def store_suggestions(db, tenant_id: int, keys: list[str]) -> float:
    """Stored suggestions for these issues, as the fill after a backfill leaves every item.

    The seeded database holds items only (stored through store_items); in production every
    item has stored suggestions once `fill_suggestions` has run after the backfill, and is
    refreshed after each change. Returns the seconds it took (ranking, in this process).
    """
    from plugin.matching.precompute import refresh_suggestions
    from plugin.matching.store import get_item

    started = time.perf_counter()
    with db.session() as session:
        for key in dict.fromkeys(keys):
            item = get_item(session, tenant_id, "jira", key)
            if item is not None:
                refresh_suggestions(session, tenant_id, item.id)
    log(f"stored suggestions for {len(set(keys))} issues in {time.perf_counter() - started:.1f} s")
    return time.perf_counter() - started


def _paired_rounds(env: dict[str, str], tenant: TenantInfo, size: Size, server_core: str | None,
                   load_core: str | None) -> dict:
    """ACE and each Inflow panel measured in alternating rounds; each panel's median round.

    Why: other load on the machine moves either server's throughput by a third between runs
    minutes apart; runs taken back to back, and their median, are what one can compare.
    """
    panels = INFLOW_PANELS[:1] if size.tiny else INFLOW_PANELS
    rounds = []
    for _ in range(1 if size.tiny else ROUNDS):
        ace = _measure_ace(size, server_core, load_core)
        rounds.append((ace, {panel: _measure_inflow(env, tenant, panel, size, server_core, load_core)
                             for panel in panels}))
    results = {"ace": sorted((r[0] for r in rounds), key=lambda a: a["wrk"]["rps"])[len(rounds) // 2]}
    for panel in panels:
        ranked = sorted(((_ratio(inflow[panel], ace), inflow[panel]) for ace, inflow in rounds),
                        key=lambda r: r[0])
        results[f"inflow {panel}"] = {**ranked[len(ranked) // 2][1],
                                      "round_ratios": [r for r, _ in ranked]}
    return results


def _ratio(inflow: dict, ace: dict) -> float:
    return inflow["wrk"]["rps"] / ace["wrk"]["rps"] if ace["wrk"]["rps"] else 0.0


def _measure_inflow(env: dict[str, str], tenant: TenantInfo, panel: str, size: Size,
                    server_core: str | None, load_core: str | None, open_loop_too: bool = True) -> dict:
    """One web server (1 worker) per panel, so each starts cold and alike."""
    # Production's threads (INFLOW_WEB_THREADS): nothing tuned for the benchmark.
    with web(env, workers=1, cores=server_core) as (base, proc):
        paths = _inflow_paths(tenant, panel, size)
        first = _warm(base, paths)
        result = _load(base, paths, size, load_core, _worker_pid(proc), open_loop_too)
        return {**result, "first_view": first}


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
    with _ace_server(server_core) as (base, proc, tenant):
        paths = _ace_paths(tenant, size)
        first = _warm(base, paths)
        return {**_load(base, paths, size, load_core, proc.pid), "first_view": first}


@contextmanager
def _ace_server(cores: str | None) -> Iterator[tuple[str, subprocess.Popen, dict]]:
    """ACE's hello-world peer listening on loopback with its tenant stored: (base URL, process, tenant)."""
    tenant = {"key": "io.inflow.bench.ace-peer", "clientKey": "bench-ace-client",
              "sharedSecret": os.urandom(24).hex(), "baseUrl": "https://bench.atlassian.net",
              "productType": "jira", "eventType": "installed"}
    port = free_port()
    store = Path(tempfile.mkdtemp(prefix="ace-")) / "store.db"
    env = {**os.environ, "PORT": str(port), "ACE_STORE": str(store), "ACE_TENANT": json.dumps(tenant),
           "NODE_ENV": "production"}
    logfile = open(fresh_dir("ace-peer") / "node.log", "wb")  # noqa: SIM115 (the peer's, for its life)
    proc = subprocess.Popen(pin(["node", "app.js"], cores), cwd=PEER, env=env, stdout=logfile,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}", proc, tenant
    finally:
        stop_process(proc)
        logfile.close()
        shutil.rmtree(store.parent, ignore_errors=True)


def _deployed_rounds(env: dict[str, str], tenant: TenantInfo, size: Size, cores: str) -> dict:
    """The issue's own protocol: each server as deployed, wrk -t2 -c32, nothing pinned.

    Inflow runs its web server with its configured workers (WEB_CONCURRENCY) and threads, as `inflow web`
    does; ACE runs its one node process, as `npm start` does. Alternating rounds, as above.
    """
    threads, connections = DEPLOYED_WRK
    workers = int(str(web_config()["workers"]))
    panels_measured = INFLOW_PANELS[:1] if size.tiny else INFLOW_PANELS
    rounds = []
    for _ in range(1 if size.tiny else ROUNDS):
        with _ace_server(cores) as (base, _proc, ace_tenant):
            paths = _ace_paths(ace_tenant, size)
            _warm(base, paths)
            ace = _wrk(base, paths, size.ace_seconds, cores, threads, connections)
        panels = {}
        for panel in panels_measured:
            with web(env, workers=workers, cores=cores) as (base, _proc):
                paths = _inflow_paths(tenant, panel, size)
                _warm(base, paths)
                panels[panel] = _wrk(base, paths, size.ace_seconds, cores, threads, connections)
        rounds.append((ace, panels))
    return {"rounds": rounds, "workers": workers}


def _warm(base: str, paths: list[str]) -> dict:
    """Every URL once (index build, JIT, permission cache), and a check that each answers 200.

    Returns the latencies of these first views (the very first one excluded: Inflow's builds
    the tenant's index), since each is a render no cache has seen.
    """
    client = Client(base, timeout=1800)  # Inflow's first panel builds the tenant's index
    samples = []
    for path in paths:
        t0 = time.perf_counter()
        status, body, _ = client.get(path)
        samples.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"{base}{path.split('?')[0]} answered {status}: {body[:300]!r}")
    client.close()
    return {k: v * 1000 for k, v in percentiles(samples[1:] or samples).items()}


def _worker_pid(proc: subprocess.Popen) -> int:
    from bench.common import children_of

    pids = children_of(proc.pid)
    return pids[0] if pids else proc.pid


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(base: str, paths: list[str], size: Size, load_core: str | None, server_pid: int,
          open_loop_too: bool = True) -> dict:
    """wrk at full speed, then the open-loop generator at the fixed rate."""
    cpu0, t0 = _cpu_seconds(server_pid), time.perf_counter()
    closed = _wrk(base, paths, size.ace_seconds, load_core)
    cpu = _cpu_seconds(server_pid) - cpu0
    closed["server_cpu_share"] = cpu / (time.perf_counter() - t0)
    # Requests per CPU-second of the server: the figure other load on the machine disturbs least.
    closed["per_cpu_second"] = closed["requests"] / cpu if cpu > 0 else 0.0
    if not open_loop_too:
        return {"wrk": closed}
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


def _wrk(base: str, paths: list[str], seconds: int, load_core: str | None,
         threads: int = 1, connections: int = CONNECTIONS) -> dict:
    script = fresh_dir(f"wrk-{time.time_ns()}") / "panel.lua"
    script.write_text(LUA % ",\n".join(f"  [[{p}]]" for p in paths))
    command = pin(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                   "-s", str(script), base], load_core)
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, env=bench_env())
    shutil.rmtree(script.parent, ignore_errors=True)
    line = next((row for row in out.stdout.splitlines() if row.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    data = json.loads(line[len("WRK_JSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def _label(name: str) -> str:
    if name == "ace":
        return "ACE hello panel"
    return "Inflow " + name.split(" ", 1)[1].replace(" uncached", " panel, fragment cache off") \
        + ("" if name.endswith("uncached") else " panel")


def _server_rows(name: str, r: dict, where: str) -> list[Row]:
    w, first = r["wrk"], r["first_view"]
    label = _label(name)
    rows = [Row(NAME, f"{label}: throughput (wrk, {CONNECTIONS} connections)", round(w["rps"], 1),
                "requests/s", note=f"{where}, 1 worker process; p50 {w['p50_us'] / 1000:.1f} ms, "
                f"p99 {w['p99_us'] / 1000:.1f} ms; non-2xx {w['non_2xx']}, socket errors "
                f"{w['socket_errors']}; server used {w['server_cpu_share']:.0%} of a core, "
                f"{w['per_cpu_second']:,.0f} requests per CPU-second; first view of each URL "
                f"p50 {first['p50']:.1f} ms, p99 {first['p99']:.1f} ms", extra=r)]
    if "open_loop" not in r:
        return rows
    o = r["open_loop"]
    judged = name != "ace"
    clean = o["non_2xx"] == 0 and o["errors"] == 0
    rows.append(Row(NAME, f"{label}: p99 at {o['rate']} requests/s (open loop)", round(o["p99"], 1), "ms",
                    target=f"< {TARGET_P99_MS} ms" if judged else "",
                    passed=(o["p99"] < TARGET_P99_MS and clean) if judged else None,
                    note=f"p50 {o['p50']:.1f} ms, p95 {o['p95']:.1f} ms; {o['completed']}/{o['sent']} "
                         f"completed, non-2xx {o['non_2xx']}, errors {o['errors']}", extra=o))
    return rows


def _rows(results: dict, size: Size, server_core: str | None, stored_s: float = 0.0) -> list[Row]:
    where = f"each pinned to core {server_core}" if server_core else "not pinned (one core)"
    server = web_config()
    served = f"{where}; {server['server']}, {server['threads']} thread(s) as INFLOW_WEB_THREADS sets"
    rows: list[Row] = []
    for name, r in results.items():
        rows += _server_rows(name, r, where if name == "ace" else served)
    ace = results["ace"]["wrk"]
    for name in (n for n in results if n != "ace"):
        inflow = results[name]["wrk"]
        rounds = results[name].get("round_ratios", [])
        ratio = rounds[len(rounds) // 2] if rounds else _ratio(results[name], results["ace"])
        per_cpu = inflow["per_cpu_second"] / ace["per_cpu_second"] if ace["per_cpu_second"] else 0.0
        judged = not name.endswith("uncached")
        runs = (f"median of {len(rounds)} alternating ACE/Inflow rounds "
                f"({', '.join(f'{r:.2f}x' for r in rounds)})" if len(rounds) > 1 else "one run")
        what = {"inflow reuse": "", "inflow experts": "",
                "inflow contributors": " (contributors: no matching)",
                "inflow reuse uncached": " (INFLOW_PANEL_CACHE=0: every view rendered afresh from stored "
                                         "suggestions, permission answers still cached)"}[name]
        rows.append(Row(NAME, f"{_label(name)} / ACE hello panel throughput", round(ratio, 2), "x",
                        target=f">= {TARGET_RATIO:g}x" if judged else "",
                        passed=(ratio >= TARGET_RATIO) if judged else None,
                        note=f"same machine, {runs}, same core, one worker process each; per CPU-second "
                             f"of the server {per_cpu:.2f}x; Inflow tenant has {size.items:,} items, "
                             f"stored suggestions for the {size.ace_urls} pooled issues (computed before "
                             f"serving in {stored_s:.0f} s, as the fill after a backfill leaves them); "
                             f"{size.ace_urls} URLs over 20 viewers, so after the first round every view "
                             f"is a repeat the fragment cache may answer{what}"))
    return rows


def _deployed_rows(deployed: dict) -> list[Row]:
    """Each panel's median ratio to ACE under the issue's own protocol (`_deployed_rounds`)."""
    rounds, (threads, connections) = deployed["rounds"], DEPLOYED_WRK
    aces = sorted(ace["rps"] for ace, _ in rounds)
    rows = [Row(NAME, f"ACE hello panel as deployed: throughput (wrk -t{threads} -c{connections})",
                round(aces[len(aces) // 2], 1), "requests/s",
                note=f"one node process, not pinned; median of {len(rounds)} rounds "
                     f"({', '.join(f'{a:,.0f}' for a in aces)})")]
    for panel in rounds[0][1]:
        ranked = sorted(((panels[panel]["rps"] / ace["rps"], panels[panel]) for ace, panels in rounds
                         if ace["rps"]), key=lambda r: r[0])
        ratio, median = ranked[len(ranked) // 2]
        rows.append(Row(NAME, f"Inflow {panel} panel as deployed / ACE hello panel throughput "
                              f"(wrk -t{threads} -c{connections})", round(ratio, 2), "x",
                        target=f">= {TARGET_RATIO:g}x", passed=ratio >= TARGET_RATIO,
                        note=f"the issue's protocol: `inflow web` with {deployed['workers']} workers as "
                             f"configured vs ACE's node process, both and wrk on every core, nothing "
                             f"pinned; {median['rps']:,.0f} requests/s (p99 {median['p99_us'] / 1000:.1f} "
                             f"ms, non-2xx {median['non_2xx']}); median of {len(ranked)} alternating "
                             f"rounds ({', '.join(f'{r:.2f}x' for r, _ in ranked)})"))
    return rows
