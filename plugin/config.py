"""Settings read once from the environment into a typed object."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_UNSET = object()


def switched_on(config: Mapping[str, Any], name: str) -> bool:
    """A feature switch: on unless the config, else the environment, says 0, false, no or off."""
    value = config.get(name, _UNSET)
    if value is _UNSET:  # the environment only when the config does not say
        value = os.environ.get(name, "1")
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'inflow.db'}"


DEFAULT_SHARD = "0"  # where a site lives until it is assigned elsewhere
_SHARD_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")  # a directory name, never a path


def shard_names(value: str) -> tuple[str, ...]:
    """The comma-separated shard names of INFLOW_SHARDS, checked to be plain directory names."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    bad = [n for n in names if not _SHARD_NAME.match(n)]
    if bad or not names:
        raise ValueError(f"shard names must match [a-z0-9_-]{{1,32}}: {value!r}")
    return names


@dataclass(frozen=True)
class Settings:
    """Everything Inflow reads from the environment."""

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
    max_body_bytes: int = 1024 * 1024
    index_dir: Path = PROJECT_ROOT / "instance" / "index"
    shards: tuple[str, ...] = (DEFAULT_SHARD,)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Parse INFLOW_* and the conventional DATABASE_URL, REDIS_URL and PORT."""
        env = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            base_url=env.get("INFLOW_BASE_URL", d.base_url).rstrip("/"),
            port=int(env.get("PORT", d.port)),
            database_url=env.get("DATABASE_URL") or d.database_url,
            redis_url=env.get("REDIS_URL") or None,
            install_keys_url=env.get("INFLOW_INSTALL_KEYS_URL", d.install_keys_url).rstrip("/"),
            app_key=env.get("INFLOW_APP_KEY", d.app_key),
            purge_after_days=int(env.get("INFLOW_PURGE_AFTER_DAYS", d.purge_after_days)),
            forge_jwks_url=env.get("INFLOW_FORGE_JWKS_URL", d.forge_jwks_url),
            forge_app_id=env.get("INFLOW_FORGE_APP_ID") or None,
            forge_ic_jwks_url_template=env.get("INFLOW_FORGE_IC_JWKS_URL_TEMPLATE") or None,
            index_dir=Path(env.get("INFLOW_INDEX_DIR") or d.index_dir),
            shards=shard_names(env.get("INFLOW_SHARDS") or ",".join(d.shards)),
        )

    def flask_config(self) -> dict[str, object]:
        """The Flask config keys the subsystems read."""
        return {
            "INFLOW_SETTINGS": self,
            "INFLOW_BASE_URL": self.base_url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "INFLOW_INSTALL_KEYS_URL": self.install_keys_url,
            "INFLOW_APP_KEY": self.app_key,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
        }
