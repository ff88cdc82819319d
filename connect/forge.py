"""Forge Remote: Forge Invocation Token (FIT) verification, the JWKS cache, tenant resolution.

Forge signs every call it makes to our remote (UI `invokeRemote`, product events, lifecycle
events) with an RS256 FIT in `Authorization: Bearer …`. The app/installation identity in a
verified FIT is the tenant; `principal` is the Atlassian account of the user, if any.
Product REST calls go to `app.apiBaseUrl` with the `x-forge-oauth-system` (app) or
`x-forge-oauth-user` (current user) bearer tokens Forge sends alongside.
"""
from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import requests
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from connect.host_client import TIMEOUT, HostClient, HostError, HostSession
from connect.impersonation import BearerAuth
from connect.jwt import LEEWAY_SECONDS, JWTRejected, Verified, unverified_header
from connect.models import Tenant
from connect.strings import account_id, all_storable

log = logging.getLogger(__name__)

FORGE_ISSUER = "forge/invocation-token"
APP_ARI_PREFIX = "ari:cloud:ecosystem::app/"
SYSTEM_TOKEN_HEADER = "x-forge-oauth-system"
# A token whose expiry cannot be read is used for at most 50 minutes; one whose `exp` can be read
# until 5 minutes before it (Forge documents a maximum of 4 hours).
SYSTEM_TOKEN_LIFETIME = timedelta(minutes=50)
TOKEN_MARGIN = timedelta(minutes=5)
MAX_TOKEN_LIFETIME = timedelta(hours=4)
USER_TOKEN_HEADER = "x-forge-oauth-user"
# Why a floor between refetches: an attacker can mint tokens with random kids; without it
# every such request would make us fetch Atlassian's JWKS.
DEFAULT_REFETCH_INTERVAL = 30.0
# Why a max age: a key Atlassian removed (rotated out) stops being trusted within a day.
DEFAULT_MAX_AGE = 24 * 3600.0
_API_BASE = re.compile(r"/ex/(jira|confluence)/([^/]+)")
# Forge tokens from an Isolated Cloud carry `icLabel`, which names their JWKS. It goes into a URL,
# so it must be a plain label before anything is done with it (Atlassian's rule, word for word).
IC_LABEL = re.compile(r"^[a-z0-9_-]{1,50}\Z")
IC_PLACEHOLDER = "{IC_LABEL}"
# Why a cap: each label is a key set fetched from its own URL; forged labels must not grow it.
MAX_IC_LABELS = 16


class JWKSCache:
    """Atlassian's Forge signing keys by `kid`; refetched on an unknown kid, at most every N s."""

    def __init__(self, url: str, refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
                 max_age: float = DEFAULT_MAX_AGE, timeout: float = 5.0) -> None:
        self.url = url
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        self.timeout = timeout
        self.fetches = 0
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> Any:
        """The public key for `kid`, fetching the key set when it is unknown or stale."""
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > self.max_age
            if kid not in self._keys or stale:
                since = now - (self._fetched_at or 0.0)
                if self._fetched_at is None or since >= self.refetch_interval or stale:
                    self._fetch(now)
            key = self._keys.get(kid)
        if key is None:
            raise JWTRejected("Unknown Forge signing key")
        return key

    def _fetch(self, now: float) -> None:
        self._fetched_at = now  # counted even on failure, so failures are rate limited too
        self.fetches += 1
        try:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            keys = pyjwt.PyJWKSet.from_dict(response.json()).keys
        except (requests.RequestException, ValueError, pyjwt.PyJWTError) as exc:
            log.warning("Could not fetch Forge JWKS from %s: %s", self.url, exc)
            return
        self._keys = {k.key_id: k.key for k in keys if k.key_id and k.key_type == "RSA"}


@dataclass(frozen=True)
class ForgeInvocation:
    """What a verified FIT says about the call, plus the product tokens sent with it."""

    claims: dict[str, Any]
    app_id: str
    installation_id: str
    cloud_id: str | None
    api_base_url: str | None
    product: str | None
    site_url: str | None
    principal: str | None
    system_token: str | None = None
    user_token: str | None = None


@dataclass(frozen=True)
class ForgeVerified(Verified):
    """A `Verified` for a FIT: the account is the FIT's `principal`, not `sub`."""

    principal: str | None = None

    @property
    def account_id(self) -> str | None:
        return self.principal


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def ic_label(token: str) -> str | None:
    """The token's `icLabel` (None for the commercial cloud), refused unless it is a plain label.

    Read before the signature is checked, because it decides which keys check it.
    """
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Forge token is malformed") from exc
    label = claims.get("icLabel") if isinstance(claims, dict) else None
    if label is None:
        return None
    if not isinstance(label, str) or not IC_LABEL.match(label):
        raise JWTRejected("Forge token has an invalid icLabel")
    return label


ICKeys = Callable[[str], JWKSCache]


def verify_fit(token: str, jwks: JWKSCache, app_id: str | None,
               ic_jwks: ICKeys | None = None) -> dict[str, Any]:
    """Check signature (RS256, by kid), issuer, audience (our app ARI) and expiry; return claims.

    A token with an `icLabel` is checked against that Isolated Cloud's keys (`ic_jwks(label)`),
    never the commercial ones; without `ic_jwks` such tokens are refused.
    """
    if not app_id:
        raise JWTRejected("Forge app id is not configured")
    label = ic_label(token)
    if label is not None:
        if ic_jwks is None:
            raise JWTRejected("Forge tokens from an Isolated Cloud are not accepted here")
        jwks = ic_jwks(label)
    header = unverified_header(token)
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
        raise JWTRejected("Forge tokens must be signed with RS256 and a kid")
    key = jwks.key_for(kid)
    try:
        claims = pyjwt.decode(token, key, algorithms=["RS256"], audience=app_id,
                              issuer=FORGE_ISSUER, leeway=LEEWAY_SECONDS,
                              options={"require": ["iss", "aud", "exp"]})
    except pyjwt.ExpiredSignatureError as exc:
        raise JWTRejected("Forge token expired") from exc
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Forge token signature or claims invalid") from exc
    app_claim = claims.get("app")
    if not isinstance(app_claim, dict) or not _text(app_claim.get("installationId")):
        raise JWTRejected("Forge token has no installation")
    if app_claim.get("id") not in (None, app_id):
        raise JWTRejected("Forge token app does not match its audience")
    return claims


def invocation_from_claims(claims: dict[str, Any], system_token: str | None = None,
                           user_token: str | None = None) -> ForgeInvocation:
    """Read the tenant and user identity out of verified FIT claims."""
    app_claim = claims["app"]
    context = value if isinstance(value := claims.get("context"), dict) else {}
    api_base_url = _text(app_claim.get("apiBaseUrl"))
    match = _API_BASE.search(api_base_url or "")
    cloud_id = _text(context.get("cloudId")) or (match.group(2) if match else None)
    return ForgeInvocation(
        claims=claims, app_id=str(app_claim.get("id") or claims["aud"]),
        installation_id=app_claim["installationId"], cloud_id=cloud_id,
        api_base_url=api_base_url.rstrip("/") if api_base_url else None,
        product=match.group(1) if match else None, site_url=_text(context.get("siteUrl")),
        principal=_text(claims.get("principal")),
        system_token=system_token, user_token=user_token,
    )


# ---------- tenants ----------

def find_forge_tenant(session: Session, installation_id: str) -> Tenant | None:
    """The tenant of a Forge installation, if known."""
    return session.scalar(select(Tenant).where(Tenant.forge_installation_id == installation_id))


def _earlier_tenant_for(session: Session, cloud_id: str | None, product: str) -> Tenant | None:
    """An earlier installation on the same site and product, which this one takes over.

    Either a Connect installation (moving to Forge) or a Forge one the site reinstalled: a
    reinstall gets a new installationId but keeps the site's cloudId. The cloudId comes from a
    verified token, so only Atlassian can name the site whose data is taken over.
    """
    if not cloud_id:
        return None
    return session.scalar(select(Tenant).where(
        Tenant.cloud_id == cloud_id, Tenant.product_type == product)
        .order_by(Tenant.updated_at.desc(), Tenant.id.desc()))


def resolve_tenant(session: Session, inv: ForgeInvocation,
                   product_hint: str | None = None) -> Tenant:
    """The tenant for a verified invocation: known, adopted from Connect, or created."""
    tenant = find_forge_tenant(session, inv.installation_id)
    product = inv.product or product_hint or (tenant.product_type if tenant else "jira")
    if tenant is None:
        tenant = _earlier_tenant_for(session, inv.cloud_id, product)
        if tenant is not None and tenant.forge_installation_id:
            log.info("tenant %s: reinstalled, installation %s replaces %s", tenant.id,
                     inv.installation_id, tenant.forge_installation_id)
    if tenant is None:
        base = inv.site_url or inv.api_base_url or ""
        # The shared secret is random and never disclosed: no Connect JWT can claim this tenant.
        tenant = Tenant(client_key=f"forge:{inv.installation_id}",
                        shared_secret=secrets.token_hex(32), base_url=base,
                        display_url=inv.site_url, product_type=product,
                        host="forge", enabled=True, installed=True)
        session.add(tenant)
    refresh_tenant(tenant, inv)
    session.flush()
    return tenant


def refresh_tenant(tenant: Tenant, inv: ForgeInvocation) -> None:
    """Record the Forge identity on the tenant (installation id, cloud id, site URL)."""
    tenant.host = "forge"
    tenant.forge_installation_id = inv.installation_id
    tenant.cloud_id = inv.cloud_id or tenant.cloud_id
    if inv.site_url:
        tenant.display_url = inv.site_url
        if not tenant.base_url or tenant.base_url.startswith("https://api.atlassian.com"):
            tenant.base_url = inv.site_url
    if not tenant.installed:
        tenant.installed = True
        tenant.uninstalled_at = None
    # A verified call is Atlassian saying the app is installed and enabled (Forge apps are not
    # disabled, only uninstalled): a Connect "disabled" from before the move, and earlier
    # refusals, are forgotten.
    tenant.enabled = True
    tenant.forge_refused_since = None
    tenant.forge_refusals = 0
    if inv.system_token and inv.api_base_url:
        tenant.forge_api_base_url = inv.api_base_url
        tenant.forge_system_token = inv.system_token
        tenant.forge_token_expires_at = token_expiry(inv.system_token)


def token_expiry(token: str, now: datetime | None = None) -> datetime:
    """When to stop using a product token: its `exp` less a margin, else the promised minimum.

    Atlassian documents `exp` as the way to tell a delivered token's remaining validity.
    """
    now = now or utcnow()
    try:
        exp = pyjwt.decode(token, options={"verify_signature": False}).get("exp")
    except pyjwt.PyJWTError:
        exp = None
    if not isinstance(exp, (int, float)) or not 0 < exp < 2**40:  # 2**40 s is year 36812
        return now + SYSTEM_TOKEN_LIFETIME
    until = datetime.fromtimestamp(exp, UTC) - TOKEN_MARGIN
    return min(max(until, now), now + MAX_TOKEN_LIFETIME)


# ---------- Flask glue ----------

def forge_settings(app: Flask) -> tuple[str, str | None]:
    """(JWKS URL, app ARI) from config overrides or the Settings."""
    settings = app.config.get("INFLOW_SETTINGS")
    jwks_url = app.config.get("INFLOW_FORGE_JWKS_URL") or getattr(settings, "forge_jwks_url", None)
    app_id = app.config.get("INFLOW_FORGE_APP_ID") or getattr(settings, "forge_app_id", None)
    return str(jwks_url), app_id


def jwks_for(app: Flask) -> JWKSCache:
    """The app's JWKS cache (one per process and URL)."""
    url, _ = forge_settings(app)
    cache = app.extensions.get("inflow.forge_jwks")
    if cache is None or cache.url != url:
        interval = float(app.config.get("INFLOW_FORGE_JWKS_REFETCH_SECONDS",
                                        DEFAULT_REFETCH_INTERVAL))
        cache = JWKSCache(url, refetch_interval=interval)
        app.extensions["inflow.forge_jwks"] = cache
    return cache


def ic_template(app: Flask) -> str | None:
    """The Isolated Cloud JWKS URL template (with {IC_LABEL}), if this deployment accepts IC."""
    settings = app.config.get("INFLOW_SETTINGS")
    template = app.config.get("INFLOW_FORGE_IC_JWKS_URL_TEMPLATE") or \
        getattr(settings, "forge_ic_jwks_url_template", None)
    return template if template and IC_PLACEHOLDER in template else None


def ic_jwks_for(app: Flask) -> ICKeys | None:
    """Key sets by Isolated Cloud label (one cache per label), or None when IC is not set up."""
    template = ic_template(app)
    if template is None:
        return None
    caches: dict[str, JWKSCache] = app.extensions.setdefault("inflow.forge_ic_jwks", {})

    def keys(label: str) -> JWKSCache:
        url = template.replace(IC_PLACEHOLDER, label)
        cache = caches.get(url)
        if cache is None:
            if len(caches) >= MAX_IC_LABELS:
                raise JWTRejected("Too many Isolated Cloud labels seen")
            cache = caches[url] = JWKSCache(url, refetch_interval=jwks_for(app).refetch_interval)
        return cache

    return keys


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer …`, if that is the scheme used."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _strip_bearer(value: str | None) -> str | None:
    if value and value[:7].lower() == "bearer ":
        value = value[7:]
    return value.strip() or None if value else None


# The manifest's modules whose calls Forge makes itself, with no user behind them (Forge names the
# endpoint, or the trigger that uses it): product and lifecycle events, the hourly trigger.
TRIGGER_MODULES = frozenset({"inflow-events", "inflow-jira-events", "inflow-confluence-events",
                             "inflow-lifecycle", "inflow-app-lifecycle", "inflow-scheduled", "inflow-hourly"})


def _from_trigger(claims: dict[str, Any]) -> bool:
    """Whether the FIT is one of our triggers' (a UI module's call names that UI module).

    The key alone decides: Atlassian documents `app.module.type` as `core:endpoint` for such
    calls, but a type it sends differently must not lose every event.
    """
    module = claims["app"].get("module")
    key = module.get("key") if isinstance(module, dict) else None
    if isinstance(key, str) and key in TRIGGER_MODULES:  # a list or object is no key (unhashable)
        return True
    log.warning("Forge call to a trigger route from module %r refused", module)
    return False


# What a tenant keeps of a FIT, and its column's width (the client key is "forge:" + installation):
# far beyond any id or URL Atlassian sends, so a longer one is refused, never cut or a 500.
_WIDTHS = (("installation_id", 249), ("cloud_id", 255), ("api_base_url", 512), ("site_url", 512))


def _fits(inv: ForgeInvocation) -> bool:
    """Whether every claim a tenant keeps fits its column."""
    return all(len(getattr(inv, name) or "") <= width for name, width in _WIDTHS)


def verify_forge_request(product_hint: str | None = None, trigger: bool = False) -> ForgeVerified:
    """Verify the current request's FIT, resolve its tenant; sets g.forge. Raises JWTRejected.

    `trigger`: only a call of one of our triggers will do. A user's panel call carries a valid FIT
    too, and Custom UI chooses the path and body of its calls: it must not deliver events.
    """
    token = bearer_token()
    if not token:
        raise JWTRejected("Missing Forge Invocation Token")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    claims = verify_fit(token, jwks_for(app), forge_settings(app)[1], ic_jwks_for(app))
    principal = claims.get("principal")
    if not all_storable(claims) or (principal is not None and not account_id(principal)):
        raise JWTRejected("Forge Invocation Token claims cannot be stored")
    inv = invocation_from_claims(claims, _strip_bearer(request.headers.get(SYSTEM_TOKEN_HEADER)),
                                 _strip_bearer(request.headers.get(USER_TOKEN_HEADER)))
    if not _fits(inv):
        raise JWTRejected("Forge Invocation Token claims are longer than Atlassian's")
    if trigger and not _from_trigger(claims):
        raise JWTRejected("Only Inflow's Forge triggers call this route", status=403)
    tenant = _resolve(app.extensions["inflow.db"], inv, product_hint)
    g.forge = inv
    return ForgeVerified(claims=claims, tenant=tenant, context_qsh=True, principal=inv.principal)


def _resolve(db: Database, inv: ForgeInvocation, product_hint: str | None) -> Tenant:
    """`resolve_tenant` in its own transaction, once more if a parallel call created it first.

    A new installation's first issue view calls three panels at once; each would create the
    tenant, and all but the first fail the unique installation key.
    """
    try:
        with db.session() as session:
            return resolve_tenant(session, inv, product_hint)
    except IntegrityError:
        with db.session() as session:
            return resolve_tenant(session, inv, product_hint)


def current_invocation() -> ForgeInvocation | None:
    """The verified Forge invocation of this request, if it came through Forge."""
    return g.get("forge")


# ---------- product REST calls with Forge's tokens ----------

@dataclass(frozen=True)
class ForgeSite:
    """What HostClient needs of a tenant, for calls through `app.apiBaseUrl`."""

    base_url: str
    client_key: str
    oauth_client_id: str | None = None


class NoForgeToken(HostError):
    """This Forge call sent no token of the kind a product call needs, and none can stand in."""

    def __init__(self, which: str) -> None:
        super().__init__(0, f"This Forge call carried no {which} token (x-forge-oauth-{which}); "
                            f"the remote needs auth.app{which.capitalize()}Token enabled in the manifest")


class ForgeHostClient(HostClient):
    """HostClient surface (.request/.jira()/.confluence()/.as_user()) with Forge bearer tokens."""

    invocation: ForgeInvocation

    @classmethod
    def for_invocation(cls, inv: ForgeInvocation, app_key: str, as_user: bool = False,
                       timeout: Any = TIMEOUT) -> ForgeHostClient:
        """As the app (`x-forge-oauth-system`) or as the calling user (`x-forge-oauth-user`)."""
        token = inv.user_token if as_user else inv.system_token
        if not token or not inv.api_base_url:
            raise NoForgeToken("user" if as_user else "system")
        site = ForgeSite(base_url=inv.api_base_url, client_key=f"forge:{inv.installation_id}")
        budget = inv.api_base_url + (f" as {inv.principal}" if as_user else "")
        session = HostSession(auth=BearerAuth(lambda: token), timeout=timeout, site=budget)
        client = cls(site, app_key, session, account_id=inv.principal if as_user else None)
        client.invocation = inv
        return client

    def as_user(self, account_id: str) -> HostClient:
        """The calling user's client (Forge sends a user token for the caller only)."""
        if account_id != self.invocation.principal:
            raise HostError(0, "Forge user tokens act only as the user who made the call")
        return ForgeHostClient.for_invocation(self.invocation, self.app_key, as_user=True,
                                              timeout=self.session.timeout)

    def _confluence_url(self) -> str:
        # apiBaseUrl is https://api.atlassian.com/ex/confluence/<cloudId>; REST lives under /wiki.
        return self.base_url + "/wiki"


def client_for_tenant(tenant: Any, app_key: str, timeout: Any = TIMEOUT) -> HostClient | None:
    """A Forge client for the tenant: this call's tokens, else the stored system token.

    None for a Connect-adopted tenant outside a Forge call (its Connect secret still signs).
    """
    inv = g.get("forge") if has_request_context() else None
    stored = stored_invocation(tenant)
    # Created by Forge: no Connect secret the site knows, so nothing but a Forge token can sign.
    forge_made = str(getattr(tenant, "client_key", "")).startswith("forge:")
    if inv is not None and inv.installation_id == getattr(tenant, "forge_installation_id", None):
        if stored is not None and not inv.system_token:  # acting as the app: the stored token
            inv = replace(inv, system_token=stored.system_token, api_base_url=inv.api_base_url or stored.api_base_url)
        if inv.system_token or forge_made:
            return ForgeHostClient.for_invocation(inv, app_key, timeout=timeout)
        return None  # adopted from Connect: its Connect secret signs as the app, as a system token would
    if stored is not None:
        return ForgeHostClient.for_invocation(stored, app_key, timeout=timeout)
    if forge_made:
        raise HostError(0, "No current Forge system token for this installation; "
                           "it is renewed by the next Forge call or event")
    return None


def stored_invocation(tenant: Any) -> ForgeInvocation | None:
    """The tenant's last Forge system token as an invocation, while it is still valid."""
    token = getattr(tenant, "forge_system_token", None)
    expires = getattr(tenant, "forge_token_expires_at", None)
    if not token or expires is None or expires <= utcnow():
        return None
    return ForgeInvocation(
        claims={}, app_id="", installation_id=tenant.forge_installation_id or "",
        cloud_id=tenant.cloud_id, api_base_url=tenant.forge_api_base_url,
        product=tenant.product_type, site_url=tenant.display_url, principal=None,
        system_token=token)
