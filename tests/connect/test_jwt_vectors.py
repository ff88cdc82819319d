"""Canonical requests and qsh against Atlassian's vectors and Atlassian's own npm library."""
from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from datetime import datetime, tzinfo
from urllib.parse import urlsplit

import jwt as pyjwt
import pytest

from connect.jwt import (
    JWTRejected,
    RequestFacts,
    canonical_request,
    parse_query,
    query_string_hash,
    verify_symmetric,
)
from sandbox import datasets
from tests.conftest import ROOT

VECTORS = datasets.jwt_vectors()
NODE_DIR = ROOT / "tests" / "node"


def _split_signed(url: str) -> tuple[str, list[tuple[str, str]], str]:
    parts = urlsplit(url)
    pairs = parse_query(parts.query)
    token = next(value for key, value in pairs if key == "jwt")
    return parts.path, pairs, token


def test_all_79_interop_vectors_are_loaded() -> None:
    assert len(VECTORS["tests"]) == 79


@pytest.mark.parametrize("vector", VECTORS["tests"], ids=[t["name"] for t in VECTORS["tests"]])
def test_interop_vector_canonical_request_and_qsh_match(vector: dict[str, str]) -> None:
    path, pairs, token = _split_signed(vector["signedUrl"])
    base_path = vector.get("addonBaseUrl", "")
    method = vector["canonicalUrl"].split("&", 1)[0]
    assert canonical_request(method, path, pairs, base_path) == vector["canonicalUrl"]
    with warnings.catch_warnings():  # the 2014 vectors use an 18-byte secret
        warnings.simplefilter("ignore", pyjwt.warnings.InsecureKeyLengthWarning)
        claims = pyjwt.decode(token, VECTORS["secret"], algorithms=["HS256"],
                              options={"verify_exp": False, "verify_iat": False})
    assert query_string_hash(method, path, pairs, base_path) == claims["qsh"]


class _AtIssue(datetime):
    """PyJWT's clock, stopped at the moment the vectors were signed (2014)."""

    moment = 0.0

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:
        return datetime.fromtimestamp(cls.moment, tz)


@pytest.mark.parametrize("vector", VECTORS["tests"], ids=[t["name"] for t in VECTORS["tests"]])
def test_interop_vector_passes_the_whole_verifier(vector: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path, pairs, token = _split_signed(vector["signedUrl"])
    claims = pyjwt.decode(token, options={"verify_signature": False})
    monkeypatch.setattr(_AtIssue, "moment", float(claims["iat"]))
    monkeypatch.setattr(pyjwt.api_jwt, "datetime", _AtIssue)
    facts = RequestFacts(vector["canonicalUrl"].split("&", 1)[0], path, pairs,
                         vector.get("addonBaseUrl", ""))
    tenants = {claims["iss"]: "the vectors' tenant"}
    elsewhere = RequestFacts("POST", path, pairs, facts.base_path)
    with warnings.catch_warnings():  # the 2014 vectors use an 18-byte secret
        warnings.simplefilter("ignore", pyjwt.warnings.InsecureKeyLengthWarning)
        verified = verify_symmetric(token, facts, tenants.get, lambda _: VECTORS["secret"])
        with pytest.raises(JWTRejected, match="qsh"):  # the same token for another request
            verify_symmetric(token, elsewhere, tenants.get, lambda _: VECTORS["secret"])
    assert (verified.tenant, verified.claims, verified.context_qsh) == (
        "the vectors' tenant", claims, False)


TRICKY_URLS = [
    "/test?a=1&a=2&a=10",
    "/test?b=2&a=1&b=1",
    "/test?x=%E5%AE%AE&x=%E5%B4%8E&x=a",
    "/test?q=hello+world",
    "/test?q=hello%20world",
    "/test?q=1%2B1",
    "/test?q=a+b&q=a%2Bb",
    "/test?empty=&also=",
    "/test?flag",
    "/test?r=%3B%2F%3F%3A%40%3D%26",
    "/test?s=%21%24%27%28%29%2A%2C",
    "/test?t=-._~",
    "/test?u=%7E%5E%60%7C",
    "/test?json=%7B%22k%22%3A%5B1%2C2%5D%7D",
    "/test?k%231=v&k%3A2=w",
    "/test?Z=1&a=2&A=3&z=4",
    "/test?a10=1&a1=2&a2=3",
    "/test?x=y%20z&x=y",
    "/test?v=%C3%A9t%C3%A9&v=ete",
    "/test?emoji=%F0%9F%98%80",
    "/test?c=&c=+&c=%2520&c=%2B",
    "/test/?a=b",
    "/",
    "/path/with&amp?x=1",
    "/rest/api/2/search?jql=project%3DKAFKA+AND+text~%22quoted+phrase%22&maxResults=50",
    "/wiki/rest/api/content?spaceKey=TSC&expand=body.storage,version",
    "/api/content/jira/KAFKA-1/experts?jwt=abc&lic=none",
    "/test?a=%2C&a=%2C%2C",
    "/test?space=%20leading&space=trailing%20",
    "/test?star=*&bang=!&paren=(x)",
]

_NODE_SCRIPT = """
const jwt = require('atlassian-jwt');
const urls = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = urls.map(u => jwt.createCanonicalRequest(jwt.fromMethodAndUrl('GET', u), false, ''));
process.stdout.write(JSON.stringify(out));
"""


def _node_canonical(urls: list[str]) -> list[str]:
    if not (NODE_DIR / "node_modules" / "atlassian-jwt").is_dir() or not shutil.which("node"):
        pytest.skip("NOT CROSS-CHECKED: tests/node/node_modules/atlassian-jwt or node missing "
                    "(run `make node` or `make test`)")
    result = subprocess.run(["node", "-e", _NODE_SCRIPT], input=json.dumps(urls), cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_canonical_requests_match_atlassians_npm_atlassian_jwt_on_tricky_urls() -> None:
    expected = _node_canonical(TRICKY_URLS)
    for url, node_canonical in zip(TRICKY_URLS, expected, strict=True):
        parts = urlsplit(url)
        ours = canonical_request("GET", parts.path, parse_query(parts.query))
        assert ours == node_canonical, url
