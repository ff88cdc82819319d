"""Loaders for the data in sandbox/data (see its README for each set's origin and licence)."""
from __future__ import annotations

import csv
import json
import lzma
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
JIRA_SETS = ("apache-activemq", "apache-zookeeper", "gitbugs-hadoop")


def _read_json(filename: str) -> Any:
    """A data file parsed afresh (xz-compressed unless it ends in plain .json)."""
    path = DATA / filename
    raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    return json.loads(raw)


# Shared results: tests and the sandbox site read the same sets many times per process, so each file
# is decompressed and parsed once; callers must copy before changing anything.
_cached_json = lru_cache(maxsize=None)(_read_json)


def _jira_file(name: str) -> str:
    if name not in JIRA_SETS:
        raise ValueError(f"unknown Jira data set {name!r}; known: {', '.join(JIRA_SETS)}")
    return f"{name}.json.xz"


def jira_issues(name: str) -> list[dict[str, Any]]:
    """The v2-shaped issues of one Jira set, parsed once per process (shared: do not mutate)."""
    return _cached_json(_jira_file(name))["issues"]


def read_jira_issues(name: str) -> list[dict[str, Any]]:
    """The issues of one Jira set parsed afresh and not kept (the caller owns them)."""
    return _read_json(_jira_file(name))["issues"]


def duplicates_path(name: str) -> Path:
    """The `query,duplicate_of` ground-truth CSV of one Jira set (what `inflow eval` reads)."""
    _jira_file(name)
    return DATA / f"{name}.duplicates.csv"


def duplicates(name: str) -> list[tuple[str, str]]:
    """(later issue, earlier issue it duplicates) pairs of one Jira set."""
    with duplicates_path(name).open(encoding="utf-8", newline="") as handle:
        return [(row["query"], row["duplicate_of"]) for row in csv.DictReader(handle)]


def jira_rest_sample() -> list[dict[str, Any]]:
    """Real KAFKA issues exactly as Jira REST v2 returned them (shared: do not mutate)."""
    return _cached_json("jira-rest-sample.json.xz")


def confluence_pages() -> list[dict[str, Any]]:
    """The Hyperledger wiki pages in Confluence REST v2 shape (shared: do not mutate)."""
    return _cached_json("confluence-hyperledger.pages.json.xz")["results"]


def confluence_spaces() -> list[dict[str, Any]]:
    """The four Hyperledger wiki spaces in Confluence REST v2 shape (shared: do not mutate)."""
    return _cached_json("confluence-hyperledger.spaces.json.xz")["results"]


def confluence_users() -> list[dict[str, Any]]:
    """The people of the Hyperledger pages as Cloud users (shared: do not mutate)."""
    return _cached_json("confluence-hyperledger.users.json.xz")["results"]


def jwt_vectors() -> dict[str, Any]:
    """Atlassian's JWT interoperability vectors: `secret` and 79 `tests` (shared: do not mutate)."""
    return _cached_json("jwt-signed-urls.json")


def descriptor_schema() -> dict[str, Any]:
    """JSON Schema of the Jira Connect app descriptor (shared: do not mutate)."""
    return _cached_json("jira-global-schema.json.xz")
