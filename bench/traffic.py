"""Mixed traffic: a site's real history replayed as webhooks while viewers open issue views.

The site: `traffic_items` learned issues, of which the generated ones (bench/corpus.py) and the
ActiveMQ issues of sandbox/data as they stood at a cut in their history (created before it, with
the comments and resolutions made before it). Its Jira is the fake site (sandbox/site) with every
REST call waiting HOST_LATENCY_S, as a real site's round trip does; Inflow runs as production does:
`inflow web` (2 web workers, plugin/runtime/web.py), Valkey, one `inflow worker` process, SQLite.

The replay: ActiveMQ's events after the cut, in their real order and proportions (issue created,
comment created, issue resolved). Before each webhook the fake site is changed as Jira would have
been (the issue appears, gets the comment, is resolved; `updated` is now), so the re-read a
comment webhook causes answers 200 with the new state. Each webhook is signed as Jira signs one
(JWT, qsh) and POSTed over HTTP: issue events carry the whole issue (with comments), comment
events the comment and the issue's id and key (Jira's shapes).

Webhook -> fresh: from the POST until the item's stored version is at least the event's and its
stored reuse suggestions were computed after that change (their index_seq reaches the item's), as
a panel would then show them; a poller reads both every POLL_S.

Phases:
1. steady: `traffic_rate` events/s for `traffic_seconds` while viewers open issue views at
   `traffic_views`/s, open loop (bench/openloop.py, its own process): each view requests the
   three panels at once, as Jira loads an issue's frames, with the viewer's signed iframe URLs.
   Half the viewed issues are ones the replay is changing.
2. burst: the next `traffic_burst` events of the history posted as fast as four senders can,
   no viewers, the same one worker: events applied per second and webhook -> fresh.
"""
from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import corpus
from bench.common import (
    Row,
    Size,
    child_named,
    latency_rows,
    log,
    peak_rss_mb,
    percentiles,
    wait_until,
)
from bench.http import Client, adopt_site, host_token, signed_path, start_fake_site
from bench.seed import TenantInfo, build_index, fresh_dir, open_database, seeded_database
from bench.servers import valkey, web, workers

NAME = "traffic"
DEFAULT_BACKENDS = ("sqlite",)
DATASET = "apache-activemq"
PROJECT = "ACTIVEMQ"  # the generated issues use AMQ-<n> keys: the replayed ones get their own
HOST_LATENCY_S = 0.15
PANELS = ("reuse", "experts", "contributors")
PANEL_P99_MS = 100.0
BURST_MIN_EVENTS_PER_S = 150.0
BURST_FRESH_P95_S = 3.0
SENDERS = 4  # concurrent webhook senders (Jira delivers webhooks concurrently)
POLL_S = 0.025
FRESH_TIMEOUT_S = 120.0  # an event not fresh by then counts as an error, at this latency
WARM_VIEWS_PER_S = 40.0


# ---------- the history ----------

@dataclass(frozen=True)
class Event:
    """One change in the real history: an issue created, a comment created, an issue resolved."""

    at: datetime
    order: int  # created < comment < resolved at the same instant
    kind: str  # created | comment | resolved
    issue: int  # index into History.issues
    comment: dict[str, Any] | None = None


@dataclass
class History:
    issues: list[dict[str, Any]]  # as the data set has them (final state), re-keyed
    events: list[Event]
    state: dict[int, dict[str, Any]] = field(default_factory=dict)  # issue index -> v2 issue now


def load_history(name: str = DATASET) -> History:
    """Every issue of the set with its events in time order (keys moved to PROJECT)."""
    from plugin.content.normalize import parse_time
    from sandbox.datasets import read_jira_issues

    issues = read_jira_issues(name)
    events: list[Event] = []
    for n, issue in enumerate(issues):
        issue["key"] = f"{PROJECT}-{issue['key'].rsplit('-', 1)[1]}"
        fields = issue["fields"]
        fields["project"] = {"key": PROJECT, "name": "ActiveMQ"}
        events.append(Event(parse_time(fields["created"]), 0, "created", n))
        for comment in (fields.get("comment") or {}).get("comments", []):
            events.append(Event(parse_time(comment["created"]), 1, "comment", n, comment))
        if fields.get("resolutiondate"):
            events.append(Event(parse_time(fields["resolutiondate"]), 2, "resolved", n))
    events.sort(key=lambda e: (e.at, e.order, e.issue))
    return History(issues, events)


def from_ms(at_ms: int) -> datetime:
    """The instant of a ms timestamp, exactly (a float division may land a microsecond short)."""
    return datetime.fromtimestamp(at_ms // 1000, UTC).replace(microsecond=at_ms % 1000 * 1000)


def jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def apply(history: History, event: Event, at: datetime) -> dict[str, Any]:
    """The issue after `event` (a new dict: the fake site may still serve the previous one)."""
    source = history.issues[event.issue]
    if event.kind == "created":
        fields = {**source["fields"], "status": {"name": "Open"}, "resolution": None,
                  "resolutiondate": None, "comment": {"comments": [], "total": 0}}
        issue = {"id": source["id"], "key": source["key"], "fields": fields}
    else:
        before = history.state[event.issue]
        fields = dict(before["fields"])
        if event.kind == "comment":
            comment = {**(event.comment or {}), "created": jira_time(at), "updated": jira_time(at)}
            comments = [*fields["comment"]["comments"], comment]
            fields["comment"] = {"comments": comments, "total": len(comments)}
        else:
            final = source["fields"]
            resolved = final["status"]["name"] in ("Resolved", "Closed")
            fields.update(status=final["status"] if resolved else {"name": "Resolved"},
                          resolution=final.get("resolution") or {"name": "Fixed"},
                          resolutiondate=jira_time(at))
        issue = {**before, "fields": fields}
    fields["updated"] = jira_time(at)
    history.state[event.issue] = issue
    return issue


def cut_index(history: History, prelearned: int) -> int:
    """Index of the first replayed event: the `prelearned`-th issue's creation."""
    created = [i for i, e in enumerate(history.events) if e.kind == "created"]
    return created[min(prelearned, len(created) - 1)]


def webhook(event: Event, issue: dict[str, Any], at_ms: int) -> tuple[str, dict[str, Any]]:
    """(slug, body) of the webhook Jira sends for this change."""
    base = {"timestamp": at_ms, "user": {"accountId": "bench-replay"}}
    if event.kind == "comment":
        comment = issue["fields"]["comment"]["comments"][-1]
        fields = issue["fields"]
        brief = {k: fields.get(k) for k in ("summary", "project", "status", "priority", "issuetype")}
        return "comment_created", {**base, "webhookEvent": "comment_created", "comment": comment,
                                   "issue": {"id": issue["id"], "key": issue["key"], "fields": brief}}
    if event.kind == "created":
        return "issue_created", {**base, "webhookEvent": "jira:issue_created",
                                 "issue_event_type_name": "issue_created", "issue": issue}
    changelog = {"items": [{"field": "resolution", "toString": issue["fields"]["resolution"]["name"]}]}
    return "issue_updated", {**base, "webhookEvent": "jira:issue_updated",
                             "issue_event_type_name": "issue_resolved", "issue": issue,
                             "changelog": changelog}


# ---------- webhook -> fresh ----------

@dataclass
class Sample:
    key: str
    version_ms: int
    posted: float  # perf_counter at the POST
    applied: float | None = None
    fresh: float | None = None


class Tracker:
    """Polls the database for each pending event's item: applied (version) and fresh (suggestions)."""

    def __init__(self, db, tenant_id: int) -> None:
        self.db, self.tenant_id = db, tenant_id
        self.lock = threading.Lock()
        self.pending: dict[str, list[Sample]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="traffic-tracker", daemon=True)

    def __enter__(self) -> Tracker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def expect(self, sample: Sample) -> None:
        with self.lock:
            self.pending.setdefault(sample.key, []).append(sample)

    def outstanding(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.pending.values())

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                keys = list(self.pending)
            if keys:
                self._poll(keys)
            self.stop.wait(POLL_S)

    def _poll(self, keys: list[str]) -> None:
        from sqlalchemy import and_, select

        from plugin.models.content import Item, StoredSuggestion
        from plugin.models.pipeline import ItemVersion

        found: dict[str, tuple[int, int | None, int | None]] = {}
        with self.db.session() as session:
            for start in range(0, len(keys), 500):
                rows = session.execute(
                    select(ItemVersion.key, ItemVersion.version_ms, Item.index_seq,
                           StoredSuggestion.index_seq)
                    .outerjoin(Item, and_(Item.tenant_id == ItemVersion.tenant_id,
                                          Item.source == ItemVersion.source, Item.key == ItemVersion.key))
                    .outerjoin(StoredSuggestion, and_(StoredSuggestion.item_id == Item.id,
                                                      StoredSuggestion.kind == "reuse"))
                    .where(ItemVersion.tenant_id == self.tenant_id, ItemVersion.source == "jira",
                           ItemVersion.key.in_(keys[start:start + 500])))
                found.update({key: (version, item_seq, seq) for key, version, item_seq, seq in rows})
        now = time.perf_counter()
        with self.lock:
            for key, (version, item_seq, seq) in found.items():
                waiting = []
                for sample in self.pending.get(key, []):
                    if version >= sample.version_ms and sample.applied is None:
                        sample.applied = now
                    if sample.applied is not None and item_seq is not None and seq is not None \
                            and seq >= item_seq:
                        sample.fresh = now
                    else:
                        waiting.append(sample)
                if waiting:
                    self.pending[key] = waiting
                else:
                    self.pending.pop(key, None)


# ---------- the replay ----------

class Replay:
    """Posts the history's webhooks, changing the fake site first, and tracks each one."""

    def __init__(self, history: History, events: list[Event], site, tenant: TenantInfo, base: str,
                 tracker: Tracker) -> None:
        self.history, self.site, self.tenant, self.base, self.tracker = history, site, tenant, base, tracker
        self.events = events
        self.lock = threading.Lock()
        self.turn = threading.Condition(self.lock)  # events change the site in history order
        self.applied = 0  # how many of the current run's events changed the site
        self.last_ms = 0
        self.failures: list[str] = []
        self.samples: list[Sample] = []
        self.accept: list[float] = []  # seconds each POST took to be answered
        self.late_s = 0.0  # how far behind its schedule the latest send was, at most

    def _next_ms(self) -> int:
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return self.last_ms

    def run(self, events: list[Event], rate: float | None) -> tuple[float, float]:
        """Send `events` at `rate`/s (None: as fast as SENDERS can); returns (start, end) times."""
        counter = itertools.count()
        start = time.perf_counter() + 0.05
        self.applied = 0

        def sender() -> None:
            client = Client(self.base, timeout=120)
            try:
                while True:
                    with self.lock:
                        i = next(counter)
                    if i >= len(events):
                        return
                    due = start + (i / rate if rate else 0.0)
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    self.late_s = max(self.late_s, -delay)
                    self._send(client, events[i], i)
            finally:
                client.close()

        threads = [threading.Thread(target=sender, name=f"traffic-sender-{n}") for n in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return start, time.perf_counter()

    def _send(self, client: Client, event: Event, i: int) -> None:
        with self.turn:  # the site changes in history order, each version newer than the last
            # A sender can take event i + 1 and get here before the one that took event i.
            self.turn.wait_for(lambda: self.applied == i)
            self.applied += 1
            self.turn.notify_all()
            at_ms = self._next_ms()
            issue = apply(self.history, event, from_ms(at_ms))
            self.site.load_jira_issues([issue])
            slug, body = webhook(event, issue, at_ms)
            sample = Sample(issue["key"], at_ms, time.perf_counter())
            self.samples.append(sample)
            self.tracker.expect(sample)
        path = f"/webhooks/jira/{slug}"
        token = host_token(self.tenant, "POST", path, sub=None, ttl=600)
        headers = {"Authorization": f"JWT {token}", "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex}
        t0 = time.perf_counter()
        try:
            status, answer, _ = client.post_json(path, body, headers)
            self.accept.append(time.perf_counter() - t0)
        except OSError as exc:
            self.failures.append(f"{slug}: {exc}")
            return
        if status not in (200, 202):
            self.failures.append(f"{slug}: {status} {answer[:200]!r}")


# ---------- the viewers ----------

def _views(base: str, groups: list[list[str]], rate: float, seconds: float) -> list[dict[str, Any]]:
    """The open-loop generator in its own process (spawned: this one has server threads)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_views_child, base, groups, rate, seconds).result()


def _views_child(base: str, groups: list[list[str]], rate: float, seconds: float) -> list[dict[str, Any]]:
    from bench.openloop import open_loop_together

    return [{"latencies": r.latencies, "non_2xx": r.non_2xx, "errors": r.errors, "sent": r.sent,
             "connections": r.max_connections}
            for r in open_loop_together(base, groups, rate, seconds, timeout=30.0)]


def view_groups(tenant: TenantInfo, keys: list[str], viewers: int, count: int) -> list[list[str]]:
    """`count` issue views (issue, viewer), each the three panels' signed iframe URLs."""
    rng = random.Random(7)
    groups = []
    for j in range(count):
        key = keys[j % len(keys)]
        query = {"issueKey": key, "projectKey": key.rsplit("-", 1)[0]}
        viewer = f"traffic-viewer-{rng.randrange(viewers)}"
        groups.append([signed_path(tenant, f"/jira/panels/{panel}", query, sub=viewer, ttl=7200)
                       for panel in PANELS])
    rng.shuffle(groups)
    return groups


# ---------- the run ----------

def run(size: Size, backends: tuple[str, ...] = DEFAULT_BACKENDS, **_: object) -> list[Row]:
    if backends[0] != "sqlite":
        raise ValueError("the mixed-traffic benchmark runs on the embedded default (sqlite) only")
    history = load_history()
    prelearned = min(size.traffic_items // 4, len(history.issues) // 2)
    cut = cut_index(history, prelearned)
    replay = history.events[cut:]
    steady_n = max(1, int(size.traffic_rate * size.traffic_seconds))
    if len(replay) < 1 + steady_n + size.traffic_burst:
        raise ValueError(f"the history has {len(replay)} events after the cut; the phases need "
                         f"{1 + steady_n + size.traffic_burst}")
    before = [history.issues[e.issue]["key"] for e in history.events[:cut] if e.kind == "created"]
    for event in history.events[:cut]:  # the issues as they stood at the cut
        apply(history, event, event.at)
    known = [history.state[n] for n in sorted(history.state)]

    url = f"sqlite:///{fresh_dir('traffic-sqlite') / 'inflow.db'}"
    generated = size.traffic_items - len(known)
    tenant = seeded_database(url, generated)
    site = start_fake_site(generated, latency=HOST_LATENCY_S, keep_calls=100_000)
    try:
        site.load_jira_issues(known)
        db = open_database(url, create=False)
        tenant = adopt_site(db, tenant, site)
        _learn(db, tenant, known, site.base_url("jira"))
        steady, burst = replay[1:1 + steady_n], replay[1 + steady_n:1 + steady_n + size.traffic_burst]
        pool = _pool(history, steady, before, generated, size.traffic_pool)
        from bench.ace import store_suggestions

        store_suggestions(db, tenant.id, pool)
        with valkey() as redis_url:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "INFLOW_BASE_URL": "https://inflow.bench",
                   "INFLOW_AUTH_SERVER_URL": site.url, "INFLOW_LOG_LEVEL": "warning"}
            with web(env, workers=2) as (base, _proc), workers(env, count=1) as procs, \
                    Tracker(db, tenant.id) as tracker:
                rows = _phases(size, history, replay[0], steady, burst, pool, site, tenant, base,
                               tracker, db)
                rows.append(Row(NAME, "worker peak resident memory", round(peak_rss_mb(procs[0].pid), 1),
                                "MiB", note="VmHWM of the one worker process"))
                refresher = child_named(procs[0].pid, "inflow-refresher")
                if refresher is not None:
                    rows.append(Row(NAME, "worker's refresher process peak resident memory",
                                    round(peak_rss_mb(refresher), 1), "MiB",
                                    note="VmHWM of the process the worker ranks in (jobs/refresher.py)"))
        db.dispose()
        return rows
    finally:
        site.stop()


def _learn(db, tenant: TenantInfo, issues: list[dict[str, Any]], site_url: str) -> None:
    """Store the replayed project's issues as they stood at the cut, as a backfill would."""
    from plugin.content.normalize import jira_issue_to_doc
    from plugin.matching.store import store_items

    docs = [jira_issue_to_doc(issue, site_url) for issue in issues]
    for start in range(0, len(docs), 500):
        with db.session() as session:
            store_items(session, tenant.id, docs[start:start + 500])
    seconds = build_index(db)
    log(f"traffic: learned {len(docs):,} {PROJECT} issues as of the cut (indexed in {seconds:.1f} s)")


def _pool(history: History, steady: list[Event], before: list[str], generated: int, size: int) -> list[str]:
    """The issues viewers open: half that the steady replay changes (most changed first), half
    other learned ones."""
    existing = set(before)
    touched = [history.issues[e.issue]["key"] for e in steady]
    active = [k for k, _ in sorted(((k, touched.count(k)) for k in set(touched) if k in existing),
                                   key=lambda kv: (-kv[1], kv[0]))][:size // 2]
    rng = random.Random(11)
    others: list[str] = []
    while len(active) + len(others) < size:
        index = rng.randrange(generated)
        key = f"{corpus.PROJECTS[index % len(corpus.PROJECTS)]}-{index + 1}"
        if key not in others:
            others.append(key)
    return active + others


def _phases(size: Size, history: History, first: Event, steady: list[Event], burst: list[Event],
            pool: list[str], site, tenant: TenantInfo, base: str, tracker: Tracker, db) -> list[Row]:
    rows: list[Row] = []
    warm = Replay(history, [first], site, tenant, base, tracker)
    log("traffic: one event through the pipeline first (worker start-up, index load)")
    warm.run([first], None)
    if not wait_until(lambda: tracker.outstanding() == 0, timeout=300, interval=0.1):
        raise RuntimeError("the first replayed event was not applied within 300 s")
    groups = view_groups(tenant, pool, size.traffic_viewers, max(2 * len(pool), 1))
    log(f"traffic: warming {len(groups)} issue views")
    warmed = _views(base, groups, WARM_VIEWS_PER_S, len(groups) / WARM_VIEWS_PER_S)
    first_views = [s for r in warmed for s in r["latencies"]]

    floor = _max_event_id(db)
    log(f"traffic: steady phase, {size.traffic_rate:g} events/s and {size.traffic_views:g} views/s "
        f"for {size.traffic_seconds:g} s")
    steady_replay = Replay(history, steady, site, tenant, base, tracker)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as viewers:
        viewers.submit(int).result()  # the process is up before the phase starts
        m0 = time.monotonic()
        views = viewers.submit(_views_child, base, groups, size.traffic_views, size.traffic_seconds)
        t0, _ = steady_replay.run(steady, size.traffic_rate)
        panels = views.result()
        m1 = time.monotonic()
    settled = wait_until(lambda: tracker.outstanding() == 0, timeout=FRESH_TIMEOUT_S, interval=0.1)
    event_errors = _event_errors(db, floor)
    rows += _steady_rows(size, steady_replay, t0, panels, first_views, settled, event_errors,
                         _host_calls(site, m0, m1))

    floor = _max_event_id(db)
    log(f"traffic: burst of {len(burst)} events")
    burst_replay = Replay(history, burst, site, tenant, base, tracker)
    b0, b1 = burst_replay.run(burst, None)
    settled = wait_until(lambda: tracker.outstanding() == 0, timeout=FRESH_TIMEOUT_S, interval=0.1)
    rows += _burst_rows(burst_replay, b0, b1, settled, _event_errors(db, floor))
    return rows


def _host_calls(site, start: float, end: float) -> str:
    """What Inflow asked the fake site between two monotonic instants (diagnostics)."""
    from plugin.pipeline.fetch import BULK_PATH

    with site.lock:
        calls = [c for c in site.calls if start <= c.at <= end]
    checks = sum(1 for c in calls if c.path.startswith("/rest/api/3/permissions/check"))
    reads = [c for c in calls if c.path.startswith("/rest/api/3/issue/")]
    issues = sum(len((c.json or {}).get("issueIdsOrKeys") or []) if c.path == BULK_PATH else 1 for c in reads)
    return (f"during the phase Inflow made {len(calls)} calls to the site: {checks} permission checks, "
            f"{len(reads)} issue reads ({issues} issues)")


def _max_event_id(db) -> int:
    from sqlalchemy import func, select

    from connect.models import WebhookEvent

    with db.session() as session:
        return session.scalar(select(func.max(WebhookEvent.id))) or 0


def _event_errors(db, floor: int) -> int:
    from sqlalchemy import func, select

    from connect.models import WebhookEvent

    with db.session() as session:
        return session.scalar(select(func.count()).where(
            WebhookEvent.id > floor, WebhookEvent.error.is_not(None))) or 0


def _mix(events: list[Event]) -> str:
    counts = {kind: sum(1 for e in events if e.kind == kind) for kind in ("created", "comment", "resolved")}
    total = max(1, len(events))
    return (f"{counts['comment'] / total:.0%} comments, {counts['created'] / total:.0%} issues created, "
            f"{counts['resolved'] / total:.0%} resolutions")


def _latencies(samples: list[Sample], attr: str) -> tuple[list[float], int]:
    """Seconds from POST to `attr` for each sample; those never reached count at FRESH_TIMEOUT_S."""
    done = [getattr(s, attr) - s.posted for s in samples if getattr(s, attr) is not None]
    missed = len(samples) - len(done)
    return done + [FRESH_TIMEOUT_S] * missed, missed


def _stored_rows(phase: str, samples: list[Sample]) -> list[Row]:
    stored, missed = _latencies(samples, "applied")
    return latency_rows(NAME, f"{phase}: webhook -> item stored", stored,
                        note=f"POST -> the item's stored version is at least the event's (its text, "
                             f"comments and people stored); {missed} not stored within "
                             f"{FRESH_TIMEOUT_S:.0f} s (counted at that)")


def _applied_rate(samples: list[Sample], start: float) -> tuple[float, float]:
    """Events whose change was stored, per second from the first POST to the last one stored."""
    applied = [s.applied for s in samples if s.applied is not None]
    span = max(applied) - start if applied else 0.0
    return (len(applied) / span if span > 0 else 0.0), span


def _steady_rows(size: Size, replay: Replay, t0: float, panels: list[dict[str, Any]],
                 first_views: list[float], settled: bool, event_errors: int, calls: str) -> list[Row]:
    rows: list[Row] = []
    samples = replay.samples
    rate, span = _applied_rate(samples, t0)
    fresh, missed = _latencies(samples, "fresh")
    rows.append(Row(NAME, f"steady: events applied ({size.traffic_rate:g}/s offered, 1 worker)",
                    round(rate, 1), "events/s",
                    note=f"{sum(s.applied is not None for s in samples)}/{len(samples)} events applied "
                         f"in {span:.1f} s from the first POST; real history: {_mix(replay.events)}; "
                         f"senders at most {replay.late_s * 1000:.0f} ms behind schedule; "
                         f"{size.traffic_items:,} learned issues; fake site {HOST_LATENCY_S * 1000:.0f} ms "
                         f"per REST call; {calls}"))
    rows += latency_rows(NAME, "steady: webhook accept time", replay.accept,
                         note="POST -> 202 (event stored and enqueued) by the web server that also "
                              "serves the panels; a late answer delays the senders behind it")
    rows += _stored_rows("steady", samples)
    rows += latency_rows(NAME, "steady: webhook -> fresh suggestion", fresh,
                         note=f"POST -> item stored at the event's version and its stored reuse "
                              f"suggestions computed after that change; {missed} not fresh within "
                              f"{FRESH_TIMEOUT_S:.0f} s (counted at that)"
                              + ("" if settled else "; the phase did not settle"))
    request_rate = size.traffic_views * len(PANELS)
    panel_errors = 0
    for panel, result in zip(PANELS, panels, strict=True):
        errors = result["non_2xx"] + result["errors"]
        panel_errors += errors
        for row in latency_rows(NAME, f"steady: {panel} panel at {request_rate:.0f} requests/s",
                                result["latencies"], target_p="p99", target_ms=PANEL_P99_MS,
                                note=f"{size.traffic_views:g} issue views/s open loop, each the three "
                                     f"panels at once; {len(result['latencies'])}/{result['sent']} "
                                     f"completed, non-2xx {result['non_2xx']}, errors {result['errors']}; "
                                     f"{size.traffic_viewers} viewers over {size.traffic_pool} issues"):
            if row.passed is not None and errors:
                row.passed = False
            rows.append(row)
    warm = {k: v * 1000 for k, v in percentiles(first_views).items()}
    rows.append(Row(NAME, "steady: first view of each (issue, viewer), before the phase, p99",
                    round(warm["p99"], 1), "ms",
                    note=f"p50 {warm['p50']:.1f} ms; {len(first_views)} panel requests at "
                         f"{WARM_VIEWS_PER_S:g} views/s: each viewer's first view of an issue asks the "
                         "site for permissions (cached 60 s), the views measured above repeat them"))
    errors = len(replay.failures) + event_errors + missed + panel_errors
    rows.append(Row(NAME, "steady: errors", errors, "errors", target="0", passed=errors == 0,
                    note=f"webhook POSTs failed {len(replay.failures)}, events with errors {event_errors}, "
                         f"not fresh in time {missed}, panel non-2xx or failed {panel_errors}"
                         + (f"; first failure: {replay.failures[0]}" if replay.failures else "")))
    return rows


def _burst_rows(replay: Replay, start: float, end: float, settled: bool, event_errors: int) -> list[Row]:
    samples = replay.samples
    rate, span = _applied_rate(samples, start)
    fresh, missed = _latencies(samples, "fresh")
    applied = sum(s.applied is not None for s in samples)
    rows = [Row(NAME, f"burst: events applied, 1 worker ({len(samples)} events)", round(rate, 1),
                "events/s", target=f">= {BURST_MIN_EVENTS_PER_S:g} events/s",
                passed=rate >= BURST_MIN_EVENTS_PER_S and applied == len(samples),
                note=f"{applied}/{len(samples)} applied in {span:.1f} s from the first POST (posting took "
                     f"{end - start:.1f} s, {SENDERS} senders); real history: {_mix(replay.events)}")]
    rows += _stored_rows("burst", samples)
    rows += latency_rows(NAME, "burst: webhook -> fresh suggestion", fresh, target_ms=BURST_FRESH_P95_S * 1000,
                         note=f"{missed} not fresh within {FRESH_TIMEOUT_S:.0f} s (counted at that)"
                              + ("" if settled else "; the burst did not settle"))
    errors = len(replay.failures) + event_errors + missed
    rows.append(Row(NAME, "burst: errors", errors, "errors", target="0", passed=errors == 0,
                    note=f"webhook POSTs failed {len(replay.failures)}, events with errors {event_errors}, "
                         f"not fresh in time {missed}"
                         + (f"; first failure: {replay.failures[0]}" if replay.failures else "")))
    return rows
