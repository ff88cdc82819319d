"""One fault's running service: a fresh database, Valkey, index directory, web server and workers."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from connect.db import Database
from tests.soak import measure, servers


@dataclass
class Site:
    """A tenant that sends webhooks: its client key and shared secret."""

    client_key: str
    secret: str
    tenant_id: int


@dataclass
class Stack:
    """Everything one fault runs against; `close` stops the processes, the database stays."""

    fault: str
    folder: Path
    database_url: str
    db: Database
    valkey: servers.Valkey
    env: dict[str, str]
    base_url: str
    web: object = None
    workers: servers.Workers | None = None
    sites: list[Site] = field(default_factory=list)

    @property
    def index_dir(self) -> Path:
        """The search index of this fault's workers and web server (their own, never shared)."""
        return self.folder / "index"

    def add_site(self, name: str, base_url: str = "http://127.0.0.1:9",
                 client_key: str | None = None, secret: str | None = None) -> Site:
        """A tenant (no site at base_url's default: its events embed their issues)."""
        key, secret = client_key or f"soak-{self.fault}-{name}", secret or secrets.token_hex(32)
        site = Site(key, secret, measure.add_tenant(self.db, key, secret, base_url))
        self.sites.append(site)
        return site

    def start(self, worker_count: int, extra_env: dict[str, str] | None = None) -> None:
        """Start the web server and the workers (after the tenants exist)."""
        self.start_web(extra_env)
        self.start_workers(worker_count)

    def start_web(self, extra_env: dict[str, str] | None = None) -> None:
        """Start the web server alone: webhooks are stored, nobody applies them yet."""
        self.env.update(extra_env or {})
        port = int(self.base_url.rsplit(":", 1)[1])
        self.web = servers.start_web(self.env, port, self.folder / "web.log")

    def start_workers(self, worker_count: int) -> None:
        """Start the workers (and so the relay, the indexer and the drains)."""
        self.workers = servers.Workers(self.env, worker_count, self.folder / "worker.log")

    def close(self) -> None:
        """Stop the workers, the web server and Valkey."""
        if self.workers is not None:
            self.workers.stop()
        if self.web is not None:
            servers.stop(self.web)  # type: ignore[arg-type]
        self.valkey.stop()


def build(fault: str, work: Path) -> Stack:
    """A fresh database (with the processing audit), Valkey and environment for one fault."""
    folder = work / fault
    folder.mkdir()
    database_url = servers.create_database("soak_" + fault.replace("-", "_"))
    db = Database(database_url)
    db.create_all()
    measure.install_audit(db)
    base_url = f"http://127.0.0.1:{servers.free_port()}"
    valkey = servers.Valkey(folder / "valkey")
    valkey.start()
    env = servers.inflow_env(database_url, valkey.url, base_url)
    env["INFLOW_INDEX_DIR"] = str(folder / "index")
    return Stack(fault, folder, database_url, db, valkey, env, base_url)
