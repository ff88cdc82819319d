"""Settings: every environment variable Inflow reads, read here once into a typed object.

The names are a public contract (README's table): rename none. Code that runs without an app
(jobs, the CLI, the web server) calls `Settings.from_env()`; the web app gets its values from
`Settings.flask_config()` in `app.config`, which is also how `connect/` is given them (it never
imports this module).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connect.impersonation import DEFAULT_AUTH_SERVER

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARD = "0"  # where a site lives until it is assigned elsewhere
_SHARD_NAME = re.compile(r"^[a-z0-9_-]{1,32}\Z")  # a directory name, never a path
_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})


def parse_boolean(value: object, default: bool, name: str = "the setting") -> bool:
    """The one reading of an on/off setting: 1/true/yes/on or 0/false/no/off, in any case.

    None or blank is `default`, a bool is itself; anything else is a ValueError that names the
    setting, so a typo stops the process at start instead of quietly meaning "on".
    """
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if not text:
        return default
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ValueError(f"{name} must be 1, true, yes, on, 0, false, no or off, not {value!r}")


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def _optional_port(env: Mapping[str, str], name: str) -> int | None:
    return _integer(env, name, 0) if env.get(name) else None


def _optional_count(value: str | None) -> int | None:
    """A count of processes when given as digits; anything else leaves the default to the caller."""
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def shard_names(value: str) -> tuple[str, ...]:
    """The comma-separated shard names of INFLOW_SHARDS, checked to be plain directory names."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    bad = [n for n in names if not _SHARD_NAME.match(n)]
    if bad or not names:
        raise ValueError(f"shard names must match [a-z0-9_-]{{1,32}}: {value!r}")
    return names


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'inflow.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything Inflow reads from the environment (README, "Environment variables")."""

    base_url: str = "http://localhost:8000"
    port: int = 8000
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str | None = None
    install_keys_url: str = "https://connect-install-keys.atlassian.com"
    app_key: str = "io.inflow.app"
    app_name: str = "Inflow"
    purge_after_days: int = 30
    forge_jwks_url: str = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
    forge_app_id: str | None = None
    forge_ic_jwks_url_template: str | None = None
    auth_server_url: str = DEFAULT_AUTH_SERVER
    max_body_bytes: int = 1024 * 1024
    valkey_dir: Path = PROJECT_ROOT / "instance" / "valkey"
    valkey_port: int | None = None  # None: the first free port from 16379
    index_dir: Path = PROJECT_ROOT / "instance" / "index"
    shards: tuple[str, ...] = (DEFAULT_SHARD,)
    analysis_processes: int | None = None  # None: one helper on 2+ cores while a core is spare
    panel_cache: bool = True
    access_log: str | None = "-"  # the web server's: "-" is stderr, a path a file, None is off
    log_level: str = "INFO"
    web_concurrency: int = 2
    web_threads: int = 16
    forwarded_allow_ips: str = "127.0.0.1,::1"
    metrics_token: str | None = None
    prometheus_multiproc_dir: str | None = None
    sandbox_url: str | None = None  # set by `inflow demo` only: the sandbox site behind /demo

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse INFLOW_* and the conventional DATABASE_URL, REDIS_URL, PORT, WEB_CONCURRENCY,
        FORWARDED_ALLOW_IPS and PROMETHEUS_MULTIPROC_DIR."""
        env = dict(os.environ if env is None else env)
        d = cls()
        port = _integer(env, "PORT", d.port)
        return cls(
            # Unset, the base URL is this machine on the port it listens on (descriptors name it).
            base_url=env.get("INFLOW_BASE_URL", f"http://localhost:{port}").rstrip("/"),
            port=port,
            database_url=env.get("DATABASE_URL") or d.database_url,
            redis_url=env.get("REDIS_URL") or None,
            install_keys_url=env.get("INFLOW_INSTALL_KEYS_URL", d.install_keys_url).rstrip("/"),
            app_key=env.get("INFLOW_APP_KEY", d.app_key),
            purge_after_days=_integer(env, "INFLOW_PURGE_AFTER_DAYS", d.purge_after_days),
            forge_jwks_url=env.get("INFLOW_FORGE_JWKS_URL", d.forge_jwks_url),
            forge_app_id=env.get("INFLOW_FORGE_APP_ID") or None,
            forge_ic_jwks_url_template=env.get("INFLOW_FORGE_IC_JWKS_URL_TEMPLATE") or None,
            auth_server_url=env.get("INFLOW_AUTH_SERVER_URL", d.auth_server_url).rstrip("/"),
            valkey_dir=Path(env.get("INFLOW_VALKEY_DIR") or d.valkey_dir),
            valkey_port=_optional_port(env, "INFLOW_VALKEY_PORT"),
            index_dir=Path(env.get("INFLOW_INDEX_DIR") or d.index_dir),
            shards=shard_names(env.get("INFLOW_SHARDS") or ",".join(d.shards)),
            analysis_processes=_optional_count(env.get("INFLOW_ANALYSIS_PROCESSES")),
            panel_cache=parse_boolean(env.get("INFLOW_PANEL_CACHE"), True, "INFLOW_PANEL_CACHE"),
            access_log=env.get("INFLOW_ACCESS_LOG", d.access_log) or None,
            log_level=env.get("INFLOW_LOG_LEVEL", d.log_level).upper(),
            web_concurrency=_integer(env, "WEB_CONCURRENCY", d.web_concurrency),
            web_threads=_integer(env, "INFLOW_WEB_THREADS", d.web_threads),
            forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS", d.forwarded_allow_ips),
            metrics_token=env.get("INFLOW_METRICS_TOKEN") or None,
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            sandbox_url=(env.get("INFLOW_SANDBOX_URL") or "").rstrip("/") or None,
        )

    def flask_config(self) -> dict[str, object]:
        """The Flask config keys the subsystems read (tests override them per app)."""
        return {
            "INFLOW_SETTINGS": self,
            "INFLOW_BASE_URL": self.base_url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "INFLOW_INSTALL_KEYS_URL": self.install_keys_url,
            "INFLOW_APP_KEY": self.app_key,
            "INFLOW_AUTH_SERVER_URL": self.auth_server_url,
            "INFLOW_PANEL_CACHE": self.panel_cache,
            "INFLOW_METRICS_TOKEN": self.metrics_token,
            "PROMETHEUS_MULTIPROC_DIR": self.prometheus_multiproc_dir,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
        }

