"""Panels: server time of the issue panels under the web server with N items, and page weight."""
from __future__ import annotations

import random
import re
import time
from pathlib import Path

from bench import corpus
from bench.common import Row, Size, children_of, current_rss_mb, latency_rows, log, timed_loop
from bench.http import Client, adopt_site, signed_path, start_fake_site
from bench.seed import fresh_dir, open_database, seeded_database
from bench.servers import postgres, valkey, web

NAME = "panels"
DEFAULT_BACKENDS = ("sqlite",)
PANEL_BUDGET_S = 90.0
WARM_TIMEOUT_S = 1800.0  # a cold worker builds the tenant's whole index on its first panel
PANELS = ("experts", "reuse", "contributors")
VIEWERS = 20  # distinct viewers: the permission cache is per viewer, as in a real site
ASSET = re.compile(r"""<(?:link|script|img)\b[^>]*?(?:href|src)=["']([^"']+)["']""", re.I)
PAGE_WEIGHT_KB = 100
EMPTY = b'<p class="empty">'  # the panel's "nothing to suggest" paragraph


def run(size: Size, backends: tuple[str, ...] = ("sqlite",), **_: object) -> list[Row]:
    """Panel figures on each backend (SQLite is the embedded default)."""
    rows: list[Row] = []
    for backend in backends:
        if backend == "sqlite":
            rows += run_on(f"sqlite:///{fresh_dir('panels-sqlite') / 'inflow.db'}", backend, size)
        else:
            with postgres() as url:
                rows += run_on(url, backend, size)
    return rows


def run_on(url: str, backend: str, size: Size) -> list[Row]:
    """Seed, serve under the web server with the fake site behind the tenant, and measure."""
    label = f"[{backend}]"
    tenant = seeded_database(url, size.items)
    site = start_fake_site(size.items)
    try:
        db = open_database(url, create=False)
        tenant = adopt_site(db, tenant, site)
        db.dispose()
        with valkey() as redis_url:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "INFLOW_BASE_URL": "https://inflow.bench",
                   "INFLOW_AUTH_SERVER_URL": site.url, "INFLOW_LOG_LEVEL": "warning"}
            with web(env, workers=1 if size.tiny else 2) as (base, proc):
                return _measure(base, proc, tenant, size, label)
    finally:
        site.stop()


def _panel_path(tenant, panel: str, index: int, viewer: int) -> str:
    project = corpus.PROJECTS[index % len(corpus.PROJECTS)]
    query = {"issueKey": f"{project}-{index + 1}", "projectKey": project}
    return signed_path(tenant, f"/jira/panels/{panel}", query, sub=f"bench-viewer-{viewer}")


def _measure(base: str, proc, tenant, size: Size, label: str) -> list[Row]:
    rng = random.Random(3)
    client = Client(base, timeout=WARM_TIMEOUT_S)
    n = f"{size.items:,}"
    log(f"panels {label}: warming the web workers (each builds its index once)")
    cold = _timed_get(client, _panel_path(tenant, "reuse", 0, 0))
    for i in range(2 if size.tiny else 12):  # each web worker builds its index once: not a view's cost
        _timed_get(client, _panel_path(tenant, PANELS[i % 3], rng.randrange(size.items), i % VIEWERS))
        client.close()
    rows = [Row(NAME, f"{label} first panel of a cold web worker", round(cold * 1000, 1), "ms",
                note="includes building the tenant's index in that worker")]
    for panel in PANELS:
        filled = 0

        def view(_: int, panel: str = panel) -> float:
            nonlocal filled
            path = _panel_path(tenant, panel, rng.randrange(size.items), rng.randrange(VIEWERS))
            elapsed = _timed_get(client, path)
            filled += EMPTY not in client.last_body
            return elapsed

        log(f"panels {label}: {panel}")
        samples, counted = timed_loop(size.panel_requests, view, PANEL_BUDGET_S)
        rows += latency_rows(NAME, f"{label} {panel} panel server time at {n}", samples, target_ms=50,
                             note=f"sequential GETs of the signed iframe URL under the web server on loopback, "
                                  f"{VIEWERS} viewers, permission checks against the fake site; {counted}; "
                                  f"{100 * filled / max(1, len(samples)):.0f}% of panels had suggestions")
    weight, parts = page_weight(client, _panel_path(tenant, "experts", 1, 0))
    rows.append(Row(NAME, f"{label} page weight (experts panel, excluding all.js)", round(weight / 1024, 1),
                    "KB", target=f"< {PAGE_WEIGHT_KB} KB", passed=weight < PAGE_WEIGHT_KB * 1024,
                    note=", ".join(f"{p} {b / 1024:.1f} KB" for p, b in parts.items())))
    workers = children_of(proc.pid)
    rows.append(Row(NAME, f"{label} web worker resident memory (max of {len(workers)})",
                    round(max((current_rss_mb(w) for w in workers), default=float("nan")), 1), "MiB",
                    note=f"web worker after the run, index of {n} items loaded"))
    client.close()
    return rows


def _timed_get(client: Client, path: str) -> float:
    t0 = time.perf_counter()
    status, body, _ = client.get(path)
    elapsed = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError(f"GET {path.split('?')[0]} answered {status}: {body[:300]!r}")
    return elapsed


def page_weight(client: Client, path: str) -> tuple[int, dict[str, int]]:
    """Bytes of the panel page and every asset it loads from us (all.js is the host's)."""
    status, html, _ = client.get(path)
    if status != 200:
        raise RuntimeError(f"panel answered {status}")
    parts = {"html": len(html)}
    for ref in dict.fromkeys(ASSET.findall(html.decode("utf-8", "replace"))):
        if "all.js" in ref or ref.startswith(("http://", "https://", "//", "data:")):
            continue
        status, body, _ = client.get(ref)
        if status == 200:
            parts[Path(ref.split("?")[0]).name] = len(body)
    return sum(parts.values()), parts
