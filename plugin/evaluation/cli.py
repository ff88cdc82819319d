"""`inflow eval reuse|experts`: replay real Jira history and report ranking quality beside a baseline."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from plugin.evaluation.history import load_issues
from plugin.evaluation.runs import evaluate_experts, evaluate_reuse, load_truth


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `eval reuse` and `eval experts`."""
    parser = subparsers.add_parser("eval", help="evaluate matching quality on real Jira history")
    commands = parser.add_subparsers(dest="eval_command", required=True)
    reuse = commands.add_parser("reuse", help="duplicate retrieval: recall@k and MRR")
    reuse.add_argument("--issues", nargs="+", required=True, help="Jira REST JSON files")
    reuse.add_argument("--truth", required=True, help="CSV with query,duplicate_of issue keys")
    reuse.add_argument("--json", action="store_true", help="print one JSON object")
    reuse.set_defaults(func=run_reuse)
    experts = commands.add_parser("experts", help="who fixed it: hit@k and MRR")
    experts.add_argument("--issues", nargs="+", required=True, help="Jira REST JSON files")
    experts.add_argument("--json", action="store_true", help="print one JSON object")
    experts.add_argument("--asker", choices=["reporter"],
                         help="the query's reporter asks (never suggested to themselves); the "
                              "replay is also run without the asker's circle, for comparison")
    experts.set_defaults(func=run_experts)


def run_reuse(args: argparse.Namespace) -> int:
    """Evaluate reuse suggestions."""
    started = time.monotonic()
    result = evaluate_reuse(load_issues(args.issues), load_truth(args.truth))
    return _report(result, args.json, time.monotonic() - started)


def run_experts(args: argparse.Namespace) -> int:
    """Evaluate expert suggestions."""
    started = time.monotonic()
    result = evaluate_experts(load_issues(args.issues), reporter_asks=args.asker == "reporter")
    return _report(result, args.json, time.monotonic() - started)


def _report(result: dict[str, Any], as_json: bool, seconds: float) -> int:
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return 0
    rows = [("inflow", result), ("baseline", result["baseline"])]
    if "not_reporter" in result:
        rows += [("inflow, not reporter", result["not_reporter"]),
                 ("baseline, not reporter", result["baseline"]["not_reporter"])]
    if "without_circle" in result:
        rows += [("no circle, not reporter", result["without_circle"]["not_reporter"])]
    metrics = [k for k in result if "@" in k] + ["mrr"]
    print(f"{'':24}{'queries':>9}" + "".join(f"{m:>11}" for m in metrics))
    for name, row in rows:
        print(f"{name:24}{row['queries']:>9}" + "".join(f"{row[m]:>11.3f}" for m in metrics))
    print(f"({seconds:.1f} s)", file=sys.stderr)
    return 0
