"""A shard: one Tantivy index in a directory, shared by every site assigned to it.

One shared index per shard, not one per site: 1,000 per-site indexes cost 16,000 files and
14,000 memory maps in every reading process, and Linux's default map limit is reached near
4,600 of them; one index with a tenant-scoped term dictionary stays one set of files.

Each process opens a shard once and reads it through Tantivy's reader, which reloads by itself
within a second of another process committing. An identity file names the index: when the
directory is deleted or rebuilt, readers notice the new identity and reopen it, and the
database's progress rows (which name the identity they refer to) tell that every site of the
shard must be indexed again.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import tantivy

from plugin.search.schema import SCHEMA, SCHEMA_VERSION, register

log = logging.getLogger(__name__)

IDENTITY = "inflow-index.json"
CHECK_EVERY = 1.0  # seconds between two looks at the identity file by a reading process
WRITER_HEAP = 64_000_000  # bytes Tantivy buffers before it writes a segment


class ShardUnavailable(Exception):
    """The shard's index is missing, unreadable or being created: nothing can be ranked on it now."""


def _read_identity(path: Path) -> str | None:
    try:
        found = json.loads((path / IDENTITY).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("schema") != SCHEMA_VERSION:
        return None
    return str(found.get("id") or "") or None


@dataclass
class Shard:
    """One shard's index as this process sees it."""

    name: str
    path: Path
    index: tantivy.Index | None = None
    identity: str | None = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reader(self) -> tuple[tantivy.Index, str]:
        """The open index and its identity; ShardUnavailable when there is none to read."""
        with self._lock:
            now = time.monotonic()
            if self.index is None or now - self._checked >= CHECK_EVERY:
                self._checked = now
                identity = _read_identity(self.path)
                if identity != self.identity or self.index is None:
                    self._open(identity)
            if self.index is None or self.identity is None:
                raise ShardUnavailable(self.name)
            return self.index, self.identity

    def _open(self, identity: str | None) -> None:
        self.index, self.identity = None, None
        if identity is None:
            return
        try:
            self.index = register(tantivy.Index.open(str(self.path)))
            self.identity = identity
        except (ValueError, OSError):
            log.warning("index of shard %s is unreadable", self.name, exc_info=True)

    def searcher(self) -> tuple[tantivy.Searcher, str]:
        """A searcher on the latest commit this process has seen, and the index's identity."""
        index, identity = self.reader()
        return index.searcher(), identity

    def reload(self) -> None:
        """See this process's own commits now rather than after the reader's next poll.

        An index whose directory was deleted cannot reload (Tantivy cannot lock its files): it
        is forgotten, and the next `reader()` opens whatever the directory holds by then.
        """
        if self.index is None:
            return
        try:
            self.index.reload()
        except (ValueError, OSError):
            log.warning("index of shard %s went away: reopening it on next read", self.name)
            with self._lock:
                self.index, self.identity, self._checked = None, None, 0.0

    def create(self) -> str:
        """A new, empty index in the shard's directory (whatever was there is removed); its identity."""
        with self._lock:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            tantivy.Index(SCHEMA, path=str(self.path))
            identity = uuid.uuid4().hex
            # Written last: a directory without it is one whose creation did not finish.
            scratch = self.path / (IDENTITY + ".new")
            scratch.write_text(json.dumps({"id": identity, "schema": SCHEMA_VERSION}))
            scratch.replace(self.path / IDENTITY)
            self._checked = 0.0
            self._open(identity)
            return identity

    def close(self) -> None:
        """Forget the open index (its files are unmapped once nothing refers to them)."""
        with self._lock:
            self.index, self.identity, self._checked = None, None, 0.0


_shards: dict[Path, Shard] = {}
_shards_lock = threading.Lock()


def shard_at(root: Path, name: str) -> Shard:
    """This process's view of the shard `name` under the index directory `root` (one per shard)."""
    path = (root / name).resolve()
    with _shards_lock:
        shard = _shards.get(path)
        if shard is None:
            shard = _shards[path] = Shard(name, path)
        return shard


def close_all() -> None:
    """Forget every shard this process opened (tests start each from a new directory)."""
    with _shards_lock:
        shards = list(_shards.values())
        _shards.clear()
    for shard in shards:
        shard.close()
