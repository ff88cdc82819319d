"""The site installs a Connect app as Atlassian does: reads its descriptor, signs `installed`."""
from __future__ import annotations

from typing import Any

import requests

from sandbox.site.server import FakeHost

TIMEOUT = (5.0, 30.0)  # connect, read: the app stores the tenant and queues its backfill


class InstallFailed(RuntimeError):
    """The app's descriptor could not be read or it refused the install."""


def install_app(host: FakeHost, descriptor_url: str, product: str) -> dict[str, Any]:
    """Install the app described at `descriptor_url` into one product; returns the payload sent.

    Like a real site, this one then signs its iframes and checks the app's JWTs with what the
    descriptor says: the app key and base URL.
    """
    if product not in host.installs:
        raise InstallFailed(f"unknown product {product!r}")
    descriptor = _descriptor(descriptor_url)
    base_url = str(descriptor["baseUrl"]).rstrip("/")
    path = str((descriptor.get("lifecycle") or {}).get("installed") or "")
    if not path.startswith("/"):
        raise InstallFailed("the descriptor has no lifecycle.installed path")
    payload = install_payload(host, product, str(descriptor["key"]))
    with host.lock:  # the app calls the site as soon as it has stored the install
        host.app_key = payload["key"]
        host.descriptors[product] = descriptor
    token = host.signer.lifecycle_token(payload["clientKey"], base_url, path)
    try:
        response = requests.post(base_url + path, json=payload, timeout=TIMEOUT,
                                 headers={"Authorization": f"JWT {token}"})
    except requests.RequestException as exc:
        raise InstallFailed(f"{base_url}{path} unreachable: {exc}") from exc
    if response.status_code // 100 != 2:
        raise InstallFailed(f"{base_url}{path} answered {response.status_code}: "
                            f"{response.text[:300]}")
    return payload


def install_payload(host: FakeHost, product: str, app_key: str) -> dict[str, Any]:
    """The `installed` body a Cloud site sends, for this site's install in one product."""
    install = host.installs[product]
    base = host.base_url(product)
    return {"key": app_key, "clientKey": install.client_key, "sharedSecret": install.secret,
            "baseUrl": base, "displayUrl": base, "productType": product,
            "description": "Inflow sandbox site", "eventType": "installed",
            "oauthClientId": install.oauth_client_id, "cloudId": f"cloud-{install.client_key}",
            "serverVersion": "sandbox", "pluginsVersion": "sandbox"}


def _descriptor(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        descriptor = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise InstallFailed(f"descriptor {url} unreadable: {exc}") from exc
    if not isinstance(descriptor, dict) or not descriptor.get("key") or not descriptor.get(
            "baseUrl"):
        raise InstallFailed(f"descriptor {url} lacks key or baseUrl")
    return descriptor
