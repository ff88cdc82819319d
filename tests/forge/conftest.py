"""Fixtures for the Forge tests: a JWKS server, an app that trusts it, and a signer."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Blueprint, Flask, g, jsonify

from tests.conftest import BASE_URL, build_app
from tests.forge.fit import APP_ID, JWKSServer, SigningKey, fit_claims, installation, sign


@pytest.fixture(scope="session")
def forge_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def jwks(forge_key: SigningKey) -> Iterator[JWKSServer]:
    server = JWKSServer([forge_key]).start()
    yield server
    server.stop()


def connect_only_app(database_url: str, **config: Any) -> Flask:
    """connect/ alone plus an echo route behind require_jwt(context=True): the host adapter's view."""
    import connect
    from connect.auth import require_jwt

    app = Flask("inflow-forge-test")
    app.config.update(TESTING=True, INFLOW_BASE_URL=BASE_URL, DATABASE_URL=database_url,
                      INFLOW_APP_KEY="io.inflow.app", INFLOW_INSTALL_KEYS_URL="http://127.0.0.1:9/keys",
                      **config)
    connect.init_app(app)
    echo = Blueprint("forge_echo", __name__)

    @echo.get("/api/echo")
    @require_jwt(context=True)
    def whoami() -> Any:
        return jsonify({"tenant": g.tenant.id, "account_id": g.account_id,
                        "host": g.tenant.host})

    app.register_blueprint(echo)
    app.extensions["inflow.db"].create_all()
    return app


@pytest.fixture
def forge_app(sqlite_url: str, jwks: JWKSServer) -> Iterator[Flask]:
    """connect/ with the Forge routes, trusting the loopback JWKS (independent of plugin/)."""
    app = connect_only_app(sqlite_url, INFLOW_FORGE_JWKS_URL=jwks.url, INFLOW_FORGE_APP_ID=APP_ID)
    yield app
    app.extensions["inflow.db"].dispose()


@pytest.fixture
def full_app(sqlite_url: str, jwks: JWKSServer) -> Iterator[Flask]:
    """The whole product (plugin/ API and pipeline) trusting the loopback JWKS."""
    app = build_app(sqlite_url, INFLOW_FORGE_JWKS_URL=jwks.url, INFLOW_FORGE_APP_ID=APP_ID)
    yield app
    app.extensions["inflow.db"].dispose()


@dataclass
class ForgeInstall:
    """One Forge installation and the means to sign its invocations."""

    key: SigningKey
    product: str = "jira"
    ids: tuple[str, str] = field(default_factory=installation)
    api_host: str = "https://api.atlassian.com"  # a fake site's URL routes product calls to it
    system_token: str = "system-token"

    @property
    def installation_id(self) -> str:
        return self.ids[0]

    @property
    def cloud_id(self) -> str:
        return self.ids[1]

    def claims(self, **kw: Any) -> dict[str, Any]:
        kw.setdefault("api_host", self.api_host)
        return fit_claims(self.installation_id, self.cloud_id, product=self.product, **kw)

    def token(self, **kw: Any) -> str:
        return sign(self.claims(**kw), self.key)

    def headers(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}",
                "x-forge-oauth-system": f"Bearer {self.system_token}"}


@pytest.fixture
def forge_install(forge_key: SigningKey) -> ForgeInstall:
    return ForgeInstall(forge_key)


@pytest.fixture
def forge_confluence(forge_key: SigningKey) -> ForgeInstall:
    return ForgeInstall(forge_key, product="confluence")
