"""Ranking metrics: recall/hit at k and mean reciprocal rank over 1-based ranks (None = missed)."""
from __future__ import annotations

REUSE_KS = (1, 5, 10, 20)
EXPERT_KS = (1, 3, 5, 10)


def summarise(ranks: list[int | None], ks: tuple[int, ...], name: str) -> dict[str, float]:
    """{f"{name}@k": share of ranks <= k, "mrr": mean 1/rank, "queries": n}."""
    n = len(ranks)
    out: dict[str, float] = {"queries": n}
    for k in ks:
        out[f"{name}@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 3) if n else 0.0
    out["mrr"] = round(sum(1.0 / r for r in ranks if r) / n, 3) if n else 0.0
    return out
