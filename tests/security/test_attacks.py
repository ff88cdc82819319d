"""The attack suite: every way in, probed with every bad credential, is refused and changes nothing.

Modelled on Atlassian's security requirements for cloud apps and their scanner. The targets come
from the app's url_map and from both served descriptors, so a route added later is attacked (and
must be authenticated or on PUBLIC) without anyone editing this file.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt

from connect.jwt import CONTEXT_QSH, parse_query, query_string_hash
from tests.connect.conftest import AtlassianSigner, alg_none_token, install_payload, new_rsa_key
from tests.connect.test_module_auth import substitute
from tests.forge.fit import APP_ID, SigningKey, fit_claims, installation, sign, unsigned
from tests.security.conftest import Target, table_checksums

# Endpoints anyone may call: what hosts fetch before an install, probes, assets, the API's map.
PUBLIC = {"static", "descriptor.serve", "health.healthz", "inflow_metrics", "forge.manifest", "home.home",
          "openapi.serve"}
SIGNED_INSTALL = {"/installed", "/uninstalled"}
FORGE_ONLY = {"/forge/events", "/forge/lifecycle", "/forge/scheduled", "/forge/rovo/experts",
              "/forge/rovo/similar", "/forge/rovo/contributors"}
# Values for the url_map's variables (a real tenant's issue, page and project).
SAMPLE = {"product": "jira", "slug": "issue_updated", "source": "jira", "key": "AMQ-1",
          "panel": "experts", "question_id": 1, "project_key": "AMQ", "macro": "experts",
          "filename": "inflow.js"}
BODY = {"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "key": "AMQ-1"},
        "eventType": "avi:jira:updated:issue", "source": "jira", "key": "AMQ-1"}


@dataclass(frozen=True)
class Probe:
    """One way in: method, URL (path and query) and the product whose tenant would call it."""

    method: str
    url: str
    product: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def qsh(self) -> str:
        parts = urlsplit(self.url)
        return query_string_hash(self.method, parts.path, parse_query(parts.query))


def route_probes(target: Target) -> list[Probe]:
    """Every non-public rule of the url_map, with sample values, for each of its methods."""
    adapter = target.app.url_map.bind("inflow.test")
    probes = []
    for rule in target.app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            values = {name: SAMPLE.get(name, "x") for name in rule.arguments}
            url = adapter.build(rule.endpoint, values, method=method)
            product = "confluence" if url.startswith("/confluence") else "jira"
            probes.append(Probe(method, url, product))
    return probes


def descriptor_probes(target: Target) -> list[Probe]:
    """Every module and lifecycle URL of both descriptors, read from the served JSON."""
    from connect.descriptor import module_urls

    probes = []
    for product in ("jira", "confluence"):
        descriptor = target.client.get(f"/{product}/atlassian-connect.json").get_json()
        for url in module_urls(descriptor).values():
            probes.append(Probe("GET", substitute(url), product))
        for path in descriptor["lifecycle"].values():
            probes.append(Probe("POST", path, product))
    return probes


def all_probes(target: Target) -> list[Probe]:
    return list(dict.fromkeys(route_probes(target) + descriptor_probes(target)))


# ---------- bad credentials ----------

def _claims(auth: Any, probe: Probe, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": auth.client_key, "iat": now, "exp": now + 180, "sub": "user-1",
              "qsh": probe.qsh()}
    claims.update(overrides)
    return claims


def connect_attacks(target: Target, probe: Probe) -> dict[str, dict[str, str]]:
    """Headers of each bad Connect JWT for this probe, as an attacker would send them."""
    auth = target.a if probe.product == "jira" else target.a_confluence
    now = int(time.time())

    def jwt(token: str) -> dict[str, str]:
        return {"Authorization": f"JWT {token}"}

    attacks = {
        "no token": {},
        "wrong secret": jwt(pyjwt.encode(_claims(auth, probe), "wrong-" * 8, algorithm="HS256")),
        "alg none": jwt(alg_none_token(_claims(auth, probe))),
        "expired": jwt(pyjwt.encode(_claims(auth, probe, iat=now - 3700, exp=now - 3600),
                                    auth.secret, algorithm="HS256")),
        "another tenant's secret": jwt(pyjwt.encode(_claims(auth, probe), target.b.secret,
                                                    algorithm="HS256")),
        "tampered qsh": jwt(pyjwt.encode(
            _claims(auth, probe, qsh=query_string_hash(probe.method, "/somewhere/else", [])),
            auth.secret, algorithm="HS256")),
        "garbage": jwt("not.a.jwt"),
        # Text no database stores (a lone surrogate, NUL) or longer than an account id: the
        # issuer is looked up before the signature is checked, the subject is written.
        "issuer with a lone surrogate": jwt(pyjwt.encode(_claims(auth, probe, iss="\ud800"), "x" * 32,
                                                         algorithm="HS256")),
        "issuer with NUL": jwt(pyjwt.encode(_claims(auth, probe, iss="a\x00b"), "x" * 32,
                                            algorithm="HS256")),
        "subject with a lone surrogate": jwt(pyjwt.encode(_claims(auth, probe, sub="\ud800"),
                                                          auth.secret, algorithm="HS256")),
        "subject with NUL": jwt(pyjwt.encode(_claims(auth, probe, sub="a\x00b"), auth.secret,
                                             algorithm="HS256")),
        "subject longer than an account id": jwt(pyjwt.encode(_claims(auth, probe, sub="x" * 200),
                                                              auth.secret, algorithm="HS256")),
    }
    if not probe.path.startswith("/api/"):
        # Iframe pages, webhooks and lifecycle calls need the qsh of the exact request.
        attacks["context token"] = jwt(pyjwt.encode(_claims(auth, probe, qsh=CONTEXT_QSH),
                                                    auth.secret, algorithm="HS256"))
    return attacks


def forge_attacks(forge_key: SigningKey) -> dict[str, dict[str, str]]:
    """Headers of each bad Forge invocation token."""
    inst, cloud = installation()
    claims = fit_claims(inst, cloud)
    now = int(time.time())

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "x-forge-oauth-system": "Bearer system"}

    return {
        "no FIT": {"Authorization": "Bearer "},
        "FIT from another key": bearer(sign(claims, SigningKey(kid=forge_key.kid))),
        "FIT alg none": bearer(unsigned(claims, forge_key.kid)),
        "expired FIT": bearer(sign(fit_claims(inst, cloud, exp=now - 3600), forge_key)),
        "FIT for another app": bearer(sign(fit_claims(inst, cloud,
                                                      aud=APP_ID[:-4] + "beef"), forge_key)),
        "principal with a lone surrogate": bearer(sign({**claims, "principal": "\ud800"}, forge_key)),
        "principal longer than an account id": bearer(sign({**claims, "principal": "x" * 200},
                                                           forge_key)),
        "installation with NUL": bearer(sign({**claims, "app": {**claims["app"],
                                                                "installationId": "a\x00b"}}, forge_key)),
    }


def install_attacks(target: Target, signer: AtlassianSigner, path: str) -> dict[str, Any]:
    """Headers of each forged signed install/uninstall (the body rotates tenant A's secret)."""
    client_key = target.a.client_key
    impostor = AtlassianSigner(new_rsa_key(), signer.kid)  # a key Atlassian never published
    now = int(time.time())
    hs256 = pyjwt.encode({"iss": client_key, "iat": now, "exp": now + 180,
                          "qsh": query_string_hash("POST", path, [])}, target.a.secret,
                         algorithm="HS256")
    return {
        "unsigned": {},
        "impostor key": {"Authorization": "JWT " + impostor.install_token(client_key, path)},
        "HS256 with the shared secret": {"Authorization": "JWT " + hs256},
        "alg none": {"Authorization": "JWT " + alg_none_token(
            {"iss": client_key, "aud": "https://inflow.test", "iat": now, "exp": now + 180,
             "qsh": query_string_hash("POST", path, [])})},
        "expired": {"Authorization": "JWT " + signer.install_token(
            client_key, path, iat=now - 3700, exp=now - 3600)},
        "wrong audience": {"Authorization": "JWT " + signer.install_token(
            client_key, path, aud="https://evil.example")},
    }


# ---------- headers ----------

def assert_security_headers(response: Any, where: str) -> None:
    """What every response must carry to live safely inside an Atlassian iframe."""
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors " in csp, f"{where}: no frame-ancestors"
    assert response.headers.get("Referrer-Policy"), f"{where}: no Referrer-Policy"
    assert "X-Frame-Options" not in response.headers, f"{where}: X-Frame-Options breaks iframes"
    if response.mimetype == "application/json":
        assert response.headers.get("Cache-Control") == "no-store", f"{where}: cacheable JSON"


def _send(target: Target, probe: Probe, headers: dict[str, str], body: Any = BODY) -> Any:
    return target.client.open(probe.url, method=probe.method, headers=headers,
                              json=body if probe.method == "POST" else None)


# ---------- tests ----------

def test_every_route_is_authenticated_or_explicitly_public(target: Target) -> None:
    unguarded = []
    for probe in route_probes(target):
        response = _send(target, probe, {})
        if response.status_code != 401:
            unguarded.append(f"{probe.method} {probe.url} -> {response.status_code}")
    assert not unguarded, ("Routes answer without credentials; authenticate them or add them "
                           f"to PUBLIC with a reason: {unguarded}")


def test_probes_cover_the_url_map_and_both_descriptors(target: Target) -> None:
    probes = all_probes(target)
    paths = {p.path for p in probes}
    assert {"/api/me", "/api/questions", "/webhooks/jira/issue_updated", "/forge/events",
            "/installed", "/jira/panels/experts", "/confluence/macros/export"} <= paths
    described = {p.path for p in descriptor_probes(target)}
    assert described <= paths and len(described) >= 15


def test_bad_connect_tokens_are_refused_everywhere_and_change_nothing(target: Target) -> None:
    before = table_checksums(target.db)
    accepted = []
    for probe in all_probes(target):
        if probe.path in SIGNED_INSTALL | FORGE_ONLY:
            continue
        for name, headers in connect_attacks(target, probe).items():
            response = _send(target, probe, headers)
            assert_security_headers(response, f"{name} {probe.method} {probe.url}")
            if response.status_code != 401:
                accepted.append(f"{name}: {probe.method} {probe.url} -> {response.status_code}")
    assert not accepted
    assert table_checksums(target.db) == before


def test_bad_forge_tokens_are_refused_on_forge_and_api_routes(target: Target,
                                                              forge_key: SigningKey) -> None:
    before = table_checksums(target.db)
    accepted = []
    for probe in all_probes(target):
        if not probe.path.startswith(("/api/", "/forge/")):
            continue
        for name, headers in forge_attacks(forge_key).items():
            response = _send(target, probe, headers)
            assert_security_headers(response, f"{name} {probe.method} {probe.url}")
            if response.status_code != 401:
                accepted.append(f"{name}: {probe.method} {probe.url} -> {response.status_code}")
    assert not accepted
    assert table_checksums(target.db) == before


def test_forged_signed_installs_are_refused_and_keep_the_shared_secret(
        target: Target, signer: AtlassianSigner) -> None:
    before = table_checksums(target.db)
    for path in sorted(SIGNED_INSTALL):
        body = install_payload(target.a.client_key, secret="attacker-" + "x" * 30)
        for name, headers in install_attacks(target, signer, path).items():
            response = target.client.post(path, json=body, headers=headers)
            assert response.status_code == 401, f"{name} {path} -> {response.status_code}"
            assert_security_headers(response, f"{name} {path}")
    assert table_checksums(target.db) == before


def test_non_admins_are_refused_on_every_admin_page_and_api(target: Target) -> None:
    before = table_checksums(target.db)
    # Pages need their projectKey (the descriptor's URL has it; the bare url_map rule does not).
    admin = [p for p in all_probes(target) if "admin" in p.path
             and (p.path.startswith("/api/") or "projectKey=" in p.url)]
    assert {p.path for p in admin} >= {"/jira/admin", "/api/admin/projects/AMQ/settings",
                                       "/api/admin/projects/AMQ/dashboard"}
    for probe in admin:
        if probe.path.startswith("/api/"):
            headers = target.a.context_headers(sub="aco")
        else:
            headers = target.a.headers(probe.method, probe.url, sub="aco")
        response = _send(target, probe, headers, body={"purpose": "pwned"})
        assert response.status_code == 403, f"{probe.method} {probe.url} -> {response.status_code}"
        assert_security_headers(response, f"non-admin {probe.url}")
    assert table_checksums(target.db) == before


def test_the_probes_are_real_ways_in_a_valid_token_gets_past_authentication(
        target: Target) -> None:
    for probe in all_probes(target):
        if probe.path in SIGNED_INSTALL | FORGE_ONLY:
            continue
        auth = target.a if probe.product == "jira" else target.a_confluence
        headers = (auth.context_headers() if probe.path.startswith("/api/")
                   else auth.headers(probe.method, probe.url))
        response = _send(target, probe, headers, body=BODY if "webhooks" in probe.url
                         else {"clientKey": auth.client_key, "key": "io.inflow.app",
                               "baseUrl": auth.base_url, "productType": probe.product})
        assert response.status_code not in (401, 500), f"{probe.method} {probe.url}"
        assert_security_headers(response, f"valid {probe.method} {probe.url}")


def test_public_routes_carry_the_security_headers(target: Target) -> None:
    for url in ("/jira/atlassian-connect.json", "/confluence/atlassian-connect.json", "/healthz",
                "/api/openapi.json", "/forge/manifest.yml", "/static/inflow.js"):
        response = target.client.get(url)
        assert response.status_code in (200, 503), url
        assert_security_headers(response, url)


def test_refused_iframe_pages_are_not_cacheable(target: Target) -> None:
    response = target.client.get("/jira/panels/experts?issueKey=AMQ-1")
    assert response.status_code == 401
    assert response.headers.get("Cache-Control") == "no-store"

