"""Reuse reasons name evidence both items really hold; snippets are the passage that matches best."""
from __future__ import annotations

from plugin.matching import reuse
from plugin.matching.experts import Evidence, work_line
from plugin.matching.reuse import passage
from plugin.matching.service import suggest_reuse
from plugin.matching.store import get_item
from plugin.matching.text import tokens
from plugin.models.content import Item
from tests.matching.helpers import database, doc, store

TRACE = """{error}: lost the session
\tat java.util.concurrent.FutureTask.run(FutureTask.java:266)
\tat org.apache.zookeeper.server.DataTree.processTxn(DataTree.java:812)
\tat org.apache.zookeeper.server.ZKDatabase.load(ZKDatabase.java:240)
\t... 12 more"""


def _weights(query: str) -> dict[str, float]:
    return dict.fromkeys(tokens(query), 1.0)


def test_the_snippet_is_the_best_matching_prose_passage_with_its_words_marked() -> None:
    text = ("Thanks for the report.\nThe follower loads its snapshot at start.\n"
            + TRACE.format(error="java.lang.NullPointerException") +
            "\nWhen the zxid of the snapshot is ahead of the log, the follower must truncate it.")
    shown = passage(text, _weights("follower snapshot zxid truncate DataTree processTxn"), tokens)
    # Not the first line, not the trace that names DataTree: the prose sentence with the most terms.
    assert shown.text == "When the zxid of the snapshot is ahead of the log, the follower must truncate it."
    assert [shown.text[s:e] for s, e in shown.marks] == ["zxid", "snapshot", "follower", "truncate"]


def test_a_trace_line_is_shown_only_when_no_prose_matches() -> None:
    text = "Thanks for the report.\n" + TRACE.format(error="java.lang.NullPointerException")
    shown = passage(text, _weights("DataTree processTxn"), tokens)
    assert "DataTree.processTxn" in shown.text
    assert passage("Nothing in common here.", _weights("zxid"), tokens).text == ""


def test_a_long_passage_is_cut_around_its_first_match_and_marks_stay_on_the_words() -> None:
    text = "filler " * 60 + "the zxid went backwards " + "tail " * 40
    shown = passage(text, _weights("zxid"), tokens, size=80)
    assert len(shown.text) <= 82 and shown.text.startswith("…") and shown.text.endswith("…")
    assert [shown.text[s:e] for s, e in shown.marks] == ["zxid"]


def test_a_link_is_no_passage_while_prose_matches_and_its_pieces_are_never_marked() -> None:
    link = "https://wiki.example.org/display/OPS/Broker%22restart%22%2000%20guide?zxid=22"
    text = f"See {link}\nThe broker restart guide covers the zxid reset in 22 steps."
    shown = passage(text, _weights("broker restart guide zxid 22"), tokens)
    assert shown.text.startswith("The broker restart guide")
    assert [shown.text[s:e] for s, e in shown.marks] == ["broker", "restart", "guide", "zxid"]
    only = passage(link, _weights("broker restart"), tokens)  # nothing but the link: shown, unmarked
    assert only.text == link and only.marks == []


def test_a_next_sentence_that_adds_no_query_term_is_never_joined() -> None:
    # Weights whose sums depend on their order: summed in a set's order, which changes from
    # process to process, a repeat sometimes outweighed the sentence it repeats or was joined to it.
    words = [f"term{n}" for n in range(12)]
    weights = {t: 0.1 + 0.7 / (n + 3) for n, t in enumerate(tokens(" ".join(words)))}
    for shift in range(12):
        first = " ".join(words[shift:] + words[:shift]) + "."
        again = "Again " + " ".join(reversed(words)) + " with other filler words."
        assert passage(f"{first} {again}", weights, tokens, size=400).text == first


def test_no_sentence_of_a_log_line_or_a_name_alone_is_shown_while_prose_matches() -> None:
    log = ("2018-03-02 10:11:12,345 | INFO | Recovery replayed 12 entries. (db-3035.log) | "
           "org.apache.activemq.broker.BrokerService | main")
    text = (f"{log}\norg.apache.activemq.store.kahadb.data.KahaAddMessageCommand\n"
            "The broker replays the journal slowly after a restart.")
    shown = passage(text, _weights("BrokerService KahaAddMessageCommand broker journal log"), tokens)
    assert shown.text == "The broker replays the journal slowly after a restart."


def test_the_halves_of_a_contraction_are_neither_named_nor_marked() -> None:
    weights = {"doesn": 9.0, "broker": 1.0, "restart": 2.0}
    text = "The broker doesn't restart."
    assert reuse.shared_terms(text, weights) == ["restart", "broker"]
    assert [text[s:e] for s, e in reuse.marks(text, weights)] == ["broker", "restart"]


def test_a_text_cut_for_reasons_ends_at_a_word_break() -> None:
    text = "filler " * 2857 + "BrokerService stops"  # character 20,000 falls inside "BrokerService"
    assert reuse._head(text, 20_000).endswith("filler")
    assert reuse._head("short text", 20_000) == "short text"


def test_hostile_text_stays_text_and_marks_point_into_it() -> None:
    text = 'The <script>alert(1)</script> zxid "><img src=x onerror=alert(2)> broke.'
    shown = passage(text, _weights("zxid onerror"), tokens)
    assert shown.text == text
    assert [shown.text[s:e] for s, e in shown.marks] == ["zxid", "onerror"]


def test_shared_terms_are_the_rarest_query_words_spelled_as_the_item_spells_them() -> None:
    weights = {"zxid": 5.0, "snapshot": 4.0, "truncat": 3.0, "log": 0.5, "datatre": 2.0, "follow": 0.1}
    text = "Snapshots and the ZXID: we Truncate the log in DataTree; followers wait."
    assert reuse.shared_terms(text, weights) == ["ZXID", "Snapshots", "Truncate", "DataTree"]


def test_shared_terms_are_words_people_wrote_not_links_or_times() -> None:
    weights = {"23t05": 9.0, "000z": 9.0, "ryan": 8.0, "grid": 1.0, "log4j": 2.0}
    text = ("Edited 2022-09-23T05:12:00.000Z, see https://wiki.example.org/display/Ryan/Grid "
            "for the log4j grid.")
    assert reuse.shared_terms(text, weights) == ["log4j", "grid"]


def test_errors_and_top_frames_are_read_from_traces() -> None:
    text = ("KeeperException$ConnectionLossException and java.io.IOException, an Error, SomeErrors\n"
            + TRACE.format(error="java.lang.NullPointerException"))
    assert reuse.errors(text) == ["KeeperException$ConnectionLossException", "IOException",
                                  "NullPointerException"]
    assert reuse.top_frames(text) == ["org.apache.zookeeper.server.DataTree.processTxn"]
    assert reuse.same_error(text, "NullPointerException in DataTree.processTxn") == "same error: NullPointerException"


def test_reasons_name_the_error_and_component_only_items_that_share_them(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    viewed = doc("ZK-9", "Follower crashes loading snapshot",
                 "The follower crashes on restart after the snapshot.\n"
                 + TRACE.format(error="java.lang.NullPointerException"), days=9)
    twin = doc("ZK-1", "Crash loading snapshot on follower restart",
               "After restart the follower crashes while loading the snapshot.\n"
               + TRACE.format(error="java.lang.NullPointerException"), days=1, resolution="Fixed")
    stranger = doc("ZK-2", "Follower snapshot is slow to load on restart",
                   "Loading a large snapshot takes minutes on the follower.", days=2)
    viewed.components = twin.components = ["server"]
    stranger.components, stranger.links = ["client"], ["ZK-9"]
    store(db, tenant, viewed, twin, stranger)
    with db.session() as s:
        found = {r.key: r for r in suggest_reuse(s, tenant, get_item(s, tenant, "jira", "ZK-9"), limit=5)}
    assert set(found) == {"ZK-1", "ZK-2"}
    assert found["ZK-1"].reasons[0] == "same error: NullPointerException at DataTree.processTxn"
    assert "same component: server" in found["ZK-1"].reasons and "resolved (Fixed)" in found["ZK-1"].reasons
    assert not any(r.startswith(("same error", "fails in", "same component", "resolved"))
                   for r in found["ZK-2"].reasons)
    assert found["ZK-2"].reasons[0] == "already linked to this item"
    assert any(r.startswith("shares ") for r in found["ZK-2"].reasons)
    assert "already linked to this item" not in found["ZK-1"].reasons
    for suggestion in found.values():
        assert suggestion.shared_terms and all(w in suggestion.title + "\n" + _body(suggestion.key)
                                               for w in suggestion.shared_terms)
        assert all(suggestion.snippet[s:e] for s, e in suggestion.snippet_marks)
    db.dispose()


def _body(key: str) -> str:
    return {"ZK-1": "After restart the follower crashes while loading the snapshot.\n"
                    + TRACE.format(error="java.lang.NullPointerException"),
            "ZK-2": "Loading a large snapshot takes minutes on the follower."}[key]


def test_an_experts_work_line_names_what_they_did_to_which_items() -> None:
    evidence = [Evidence(1, "jira", "ZK-1", "Crash", None, "resolver"),
                Evidence(2, "jira", "ZK-7", "Slow load", None, "commenter"),
                Evidence(3, "jira", "ZK-2", "Crash again", None, "resolver")]
    assert work_line(evidence, 2) == "resolved ZK-1 and ZK-2; commented on ZK-7; answered 2 questions here"
    page = {"item_id": 4, "source": "confluence", "key": "98765", "title": "Runbook: restoring a snapshot",
            "url": None, "role": "editor"}
    assert work_line([page]) == 'edited "Runbook: restoring a snapshot"'
    assert work_line([], 1) == "answered 1 question here" and work_line([]) == ""


def test_pages_in_the_same_space_and_items_with_shared_labels_say_so() -> None:
    viewed = reuse.Viewed("Restore a snapshot", frozenset(["backup"]), "1", "confluence", "OPS")
    page = Item(source="confluence", key="2", title="Snapshot restore runbook", space="OPS", components=[],
                labels=["backup"], links=[], resolution=None, helpful_count=3)
    other = Item(source="confluence", key="3", title="Snapshot restore runbook", space="DEV", components=[],
                 labels=["misc"], links=[], resolution=None, helpful_count=0)
    weights = _weights("restore snapshot")
    assert reuse.reasons(page, "", viewed, weights)[0] == [
        'shares "restore", "Snapshot"', "same label: backup", "same space: OPS", "helped 3 people before"]
    assert reuse.reasons(other, "", viewed, weights)[0] == ['shares "restore", "Snapshot"']

