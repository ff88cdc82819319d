"""The plain TF-IDF baseline every report shows beside the app's figures.

Cosine over summary twice + the first 2,000 characters of the description, sublinear tf,
smoothed idf, English stop words (the scikit-learn `TfidfVectorizer` recipe).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np

from plugin.matching.text import STOP_WORDS

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def baseline_text(issue: dict[str, Any]) -> str:
    """Summary twice and the head of the description."""
    fields = issue.get("fields") or {}
    summary = str(fields.get("summary") or "")
    description = fields.get("description")
    description = description if isinstance(description, str) else ""
    return f"{summary} {summary} {description[:2000]}"


class TfIdf:
    """TF-IDF vectors of a fixed corpus with an inverted index for cosine queries."""

    def __init__(self, texts: list[str]) -> None:
        counts = [Counter(t for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS)
                  for text in texts]
        df = Counter(term for c in counts for term in c)
        n = len(texts)
        self.idf = {term: math.log((1 + n) / (1 + d)) + 1 for term, d in df.items()}
        self.vectors = [self._weigh(c) for c in counts]
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for doc, vector in enumerate(self.vectors):
            for term, weight in vector.items():
                entry = postings.setdefault(term, ([], []))
                entry[0].append(doc)
                entry[1].append(weight)
        self.postings = {t: (np.array(d), np.array(w)) for t, (d, w) in postings.items()}
        self.n = n

    def _weigh(self, counts: Counter[str]) -> dict[str, float]:
        vector = {t: (1 + math.log(c)) * self.idf[t] for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def similarities(self, doc: int) -> np.ndarray:
        """Cosine of one document with every document of the corpus."""
        scores = np.zeros(self.n)
        for term, weight in self.vectors[doc].items():
            docs, weights = self.postings[term]
            scores[docs] += weight * weights
        return scores
