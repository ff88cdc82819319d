"""The disk that holds the index fills up while a worker writes it: its commits fail, queries keep
answering from the last commit, nothing is recorded as indexed that is not, and once space is
freed the index converges to the database."""
from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.matching.store import upsert_items
from plugin.search import catch_up, current_seq, indexed_through, site_view
from plugin.search.shard import close_all
from tests.matching.helpers import database, doc
from tests.search.test_writers import _corpus, _indexer, _keys

DISK = "8m"


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An index directory on a filesystem of its own, small enough to fill (a tmpfs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"disk full NOT TESTED: cannot mount a small tmpfs here ({done.stderr.strip()})")
    monkeypatch.setenv("INFLOW_INDEX_DIR", str(mount / "index"))
    try:
        yield mount
    finally:
        close_all()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    """Take every free byte of the filesystem; the file that holds them."""
    filler = mount / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _new_items(count: int) -> list:
    return [doc(f"NEW-{n}", f"Gadget {n} stalls", f"fresh{n} stall in relay {n % 5}") for n in range(count)]


def test_a_full_disk_fails_commits_without_loss_and_the_index_converges_once_freed(
        sqlite_url: str, small_disk: Path) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_items(s, tenant, _corpus(300))
    assert catch_up(db, timeout=60)
    filler = _fill(small_disk)
    with db.session() as s:  # webhooks keep arriving: the database takes them
        upsert_items(s, tenant, _new_items(200))
        wanted = current_seq(s, tenant)
    proc = _indexer(sqlite_url)
    try:
        time.sleep(4)  # several steps, each failing to write its segment
        assert proc.poll() is None, "the writer gave up instead of retrying"
        with db.session() as s:  # queries answer from the last commit; nothing is claimed indexed
            assert site_view(s, tenant).count == 300
            assert indexed_through(s, tenant) < wanted
        assert "APP-7" in _keys(db, tenant, "marker7")
        filler.unlink()
        assert catch_up(db, tenant, timeout=60)  # the writer's next step succeeds
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    assert "failed (1 in a row; 0 B free on the index's disk)" in output, output[-2000:]
    close_all()  # a process starting now reads what is on disk
    with db.session() as s:
        assert site_view(s, tenant).count == 500
        assert indexed_through(s, tenant) == wanted
    for n in (0, 99, 199):
        assert f"NEW-{n}" in _keys(db, tenant, f"fresh{n}")
    assert os.listdir(small_disk / "index" / "0")
