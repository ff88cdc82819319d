"""Micro-benchmark: the Connect JWT verification path of this tree against a git revision's.

    .venv/bin/python -m tests.connect.profile_jwt [--baseline REV] [--urls N] [--rounds R]

Signs N reuse-panel URLs as Jira signs an iframe (query parameters, qsh, sub; 20 tenants with
64-character secrets), then times what a request pays from its raw query string to a verified
token: `facts_of` and `verify_symmetric` with an in-memory tenant lookup (the per-process tenant
cache's hit). Each round makes one pass over every URL with each variant, in alternating order;
the best round of each is reported, per verification.
"""
from __future__ import annotations

import argparse
import gc
import secrets
import subprocess
import sys
import time
import types
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from connect import jwt as current
from connect.auth import facts_of
from tests.conftest import ROOT
from tests.jwt_helpers import signed_url

BASE_URL = "https://inflow.example.com"
PANEL = "/jira/panels/reuse"
TENANTS = 20


def load_revision(revision: str) -> types.ModuleType:
    """connect/jwt.py as it was at `revision`, imported under another name."""
    source = subprocess.run(["git", "show", f"{revision}:connect/jwt.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("connect_jwt_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:connect/jwt.py", "exec"), module.__dict__)
    return module


def panel_requests(count: int) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(path, raw query) of `count` signed panel URLs, and the tenants that signed them."""
    tenants = {f"client-{n}": SimpleNamespace(shared_secret=secrets.token_hex(32))
               for n in range(TENANTS)}
    keys = sorted(tenants)
    requests = []
    for n in range(count):
        key = keys[n % TENANTS]
        site = f"site{n % TENANTS}.atlassian.net"
        url = (f"{PANEL}?issueKey=AMQ-{n + 1}&projectKey=AMQ&xdm_e=https%3A%2F%2F{site}"
               f"&xdm_c=channel-io.inflow.app__reuse&cp=&xdh={site}&lic=none&cv=1001.0.0-SNAPSHOT")
        signed = urlsplit(signed_url(key, tenants[key].shared_secret, "GET", url,
                                     sub=f"account-{n % 97}", ttl=600))
        requests.append((signed.path, signed.query))
    return requests, tenants


def verifier(module: types.ModuleType, tenants: dict[str, Any]
             ) -> Callable[[str, str], Any]:
    """One request's verification with `module`'s verify_symmetric."""
    def secret_of(tenant: Any) -> str:
        return tenant.shared_secret

    def verify(path: str, query: str) -> Any:
        facts = facts_of("GET", path, query.encode("ascii"), BASE_URL)
        token = next(value for name, value in facts.query if name == "jwt")
        return module.verify_symmetric(token, facts, tenants.get, secret_of)

    return verify


def one_pass(verify: Callable[[str, str], Any], requests: list[tuple[str, str]]) -> float:
    gc.disable()
    try:
        started = time.perf_counter()
        for path, query in requests:
            verify(path, query)
        return time.perf_counter() - started
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with")
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    requests, tenants = panel_requests(args.urls)
    variants = {args.baseline: verifier(load_revision(args.baseline), tenants),
                "this tree": verifier(current, tenants)}
    for verify in variants.values():  # both accept every token, and warm up
        assert all(verify(path, query).tenant is not None for path, query in requests)
    best = dict.fromkeys(variants, float("inf"))
    for round_ in range(args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            best[name] = min(best[name], one_pass(variants[name], requests))
    for name, seconds in best.items():
        print(f"{name:>12}: {seconds / len(requests) * 1e6:7.1f} µs per verification "
              f"(best of {args.rounds} passes over {len(requests)} signed panel URLs)")
    base, ours = (best[name] / len(requests) * 1e6 for name in variants)
    print(f"{'difference':>12}: {ours - base:+7.1f} µs per request "
          f"({(ours - base) / 400:+.1%} of a 0.4 ms cached panel request)")


if __name__ == "__main__":
    main()
