"""`inflow eval reuse|experts` replay a slice of real ZooKeeper history and report beside the baseline."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from plugin.cli import main
from sandbox import datasets

ZOOKEEPER = "apache-zookeeper"


@pytest.fixture(scope="module")
def zookeeper_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 300 ZooKeeper issues as a plain list, and the duplicate pairs among them."""
    folder = tmp_path_factory.mktemp("zk")
    # sorted() copies: the parsed set is shared with the rest of the process.
    issues = sorted(datasets.jira_issues(ZOOKEEPER), key=lambda i: i["fields"]["created"])
    head = issues[:300]
    keys = {i["key"] for i in head}
    (folder / "issues.json").write_text(json.dumps(head))
    with (folder / "truth.csv").open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["query", "duplicate_of"])
        for query, duplicate_of in datasets.duplicates(ZOOKEEPER):
            if query in keys and duplicate_of in keys:
                writer.writerow([query, duplicate_of])
    return folder / "issues.json", folder / "truth.csv"


def test_eval_reuse_reports_recall_and_mrr_beside_the_baseline(
        zookeeper_slice: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    issues, truth = zookeeper_slice
    assert main(["eval", "reuse", "--issues", str(issues), "--truth", str(truth), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    keys = {"queries", "recall@1", "recall@5", "recall@10", "recall@20", "mrr"}
    assert keys <= set(result) and keys <= set(result["baseline"])
    assert result["queries"] == result["baseline"]["queries"] > 0
    assert 0 <= result["recall@1"] <= result["recall@5"] <= result["recall@10"] <= result["recall@20"] <= 1


def test_eval_experts_reports_hits_including_the_not_reporter_subset(
        zookeeper_slice: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    issues, _ = zookeeper_slice
    assert main(["eval", "experts", "--issues", str(issues)]) == 0
    table = capsys.readouterr().out
    assert "inflow" in table and "baseline" in table and "not reporter" in table
    assert main(["eval", "experts", "--issues", str(issues), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    keys = {"queries", "hit@1", "hit@3", "hit@5", "hit@10", "mrr"}
    assert keys <= set(result) and keys <= set(result["not_reporter"]) and keys <= set(result["baseline"])
    assert result["queries"] > 0 and result["hit@10"] > 0


def test_eval_experts_with_the_reporter_asking_reports_the_circle_beside_no_circle(
        zookeeper_slice: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    issues, _ = zookeeper_slice
    assert main(["eval", "experts", "--issues", str(issues), "--asker", "reporter", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # The reporter is never suggested to themselves: their own fixes are misses.
    assert result["hit@10"] <= result["not_reporter"]["hit@10"] or result["not_reporter"]["queries"] == 0
    assert set(result["without_circle"]["not_reporter"]) == set(result["not_reporter"])


def test_eval_reads_the_shipped_compressed_sets(capsys: pytest.CaptureFixture[str]) -> None:
    from plugin.evaluation.history import load_issues

    path = str(datasets.DATA / f"{ZOOKEEPER}.json.xz")
    assert len(load_issues([path])) == len(datasets.jira_issues(ZOOKEEPER))
