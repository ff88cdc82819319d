"""A ranking's engine searches run at the same time and find what they find one after the other."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from plugin.config import Settings
from plugin.matching.store import upsert_item
from plugin.matching.text import tokens
from plugin.search import bind, catch_up, site_view
from plugin.search.shard import close_all
from tests.matching.helpers import database, doc

TITLES = ["Broker drops messages on restart", "Consumer lag grows after failover", "Disk full stops the broker",
          "Login times out behind the proxy", "Replica falls behind the leader", "Messages lost after failover"]


def _weights(**words: float) -> dict[str, float]:
    return {tokens(word)[0]: weight for word, weight in words.items()}


def _searches() -> list[tuple[dict[str, float], int, str]]:
    return [(_weights(broker=1.0, messages=2.0, failover=0.5), 4, "all"),
            (_weights(lag=1.0, replica=1.0), 3, "statement"), (_weights(disk=1.0), 2, "all")]


def test_searches_at_once_find_what_each_finds_alone_also_in_a_forked_process(tmp_path: Path) -> None:
    db, tenant = database(f"sqlite:///{tmp_path / 'inflow.db'}")
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    with db.session() as session:
        for n, title in enumerate(TITLES):
            upsert_item(session, tenant, doc(f"APP-{n}", title, title.lower()))
    assert catch_up(db)
    with db.session() as session:
        view = site_view(session, tenant)
        alone = [view.candidates(*search) for search in _searches()]
        assert [len(hits) for hits in alone] == [4, 2, 1]
        assert view.candidates_at_once(_searches()) == alone
        # A forked child (the web server forks its workers) searches with threads of its own.
        child = os.fork()
        if child == 0:
            os._exit(0 if view.candidates_at_once(_searches()) == alone else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    close_all()
    db.dispose()
