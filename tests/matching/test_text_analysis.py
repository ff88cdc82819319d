"""Fast text paths (clip, tokens, term counts) give exactly what the plain implementations gave.

Stored term vectors feed every index cache and the evaluations, so a faster analysis must not
change one term, one count or the order of terms (JSON text and top-N ties depend on it).
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from functools import lru_cache

import pytest

from plugin.content.markup import clip
from plugin.content.normalize import confluence_page_to_doc, jira_issue_to_doc
from plugin.matching import text
from plugin.matching.vectors import _top, term_vector
from sandbox import datasets


def reference_clip(value: str, limit: int = 100_000) -> str:
    """clip as it was: two substitutions over the whole text."""
    value = re.sub(r"[ \t\r\f\v\u00a0]+", " ", value[: limit * 2])
    value = re.sub(r"\n\s*\n+", "\n\n", value)
    return value.strip()[:limit]


_reference_analyse = lru_cache(maxsize=None)(text._analyse)


def reference_tokens(value: str) -> list[str]:
    """tokens as they were: one regex pass, each word analysed."""
    return [term for raw in text._WORD.findall(value) for term in _reference_analyse(raw)]


def reference_counts(value: str) -> dict[str, int]:
    return dict(Counter(reference_tokens(value)))


@pytest.fixture(scope="module")
def raw_texts() -> list[str]:
    """Real markup as hosts send it: Jira wiki bodies, comments and summaries, Confluence XHTML."""
    out: list[str] = []
    for name in ("apache-zookeeper", "apache-activemq"):
        for issue in datasets.jira_issues(name)[:400]:
            fields = issue["fields"]
            out += [fields.get("summary") or "", fields.get("description") or ""]
            out += [c.get("body") or "" for c in (fields.get("comment") or {}).get("comments", [])]
    pages = datasets.confluence_pages()
    out += [p.get("body", {}).get("storage", {}).get("value", "") for p in pages[:200]]
    return out


@pytest.fixture(scope="module")
def doc_texts() -> list[tuple[str, str, str, list[str]]]:
    """(title, text, comments, meta) of real issues and pages after normalisation."""
    docs = []
    for name in ("apache-zookeeper", "apache-activemq"):
        issues = datasets.jira_issues(name)[:400]
        docs += [jira_issue_to_doc(issue, "https://site.test") for issue in issues]
    pages = datasets.confluence_pages()
    docs += [confluence_page_to_doc(page, "https://site.test") for page in pages[:200]]
    return [(d.title, d.text, "\n\n".join(d.comments), d.components + d.labels) for d in docs]


def awkward_texts() -> list[str]:
    """Unicode words, underscores, camelCase, long numbers and every kind of blank."""
    rng = random.Random(7)
    alphabet = [" ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u2003", "a", "Z", "_", "9", "é", "ß",
                "Ж", "数", "-", "getHTTPResponse", "snake_case", "1234567890", "IOException"]
    made = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(80))) for _ in range(3000)]
    return made + ["Ünïcödé naïve café XMLHttpRequest", "Zoo\u00a0Keeper  \n \n\n x", "", "  "]


def test_clip_is_unchanged_on_real_and_awkward_text(raw_texts: list[str]) -> None:
    samples = raw_texts + [reference_clip(t) for t in raw_texts] + awkward_texts()
    for limit in (100_000, 1000, 7):
        assert [clip(t, limit) for t in samples] == [reference_clip(t, limit) for t in samples]


def test_tokens_and_counts_are_unchanged_in_content_and_order(doc_texts: list[tuple]) -> None:
    samples = [t for title, body, comments, _ in doc_texts for t in (title, body, comments)]
    samples += awkward_texts()
    assert [text.tokens(t) for t in samples] == [reference_tokens(t) for t in samples]
    for sample in samples:
        assert list(text.term_counts(sample).items()) == list(reference_counts(sample).items())


def test_stored_term_vectors_are_byte_identical(doc_texts: list[tuple]) -> None:
    for title, body, comments, meta in doc_texts:
        fields = {"t": title, "d": body, "c": comments, "m": " ".join(meta)}
        expected = {name: _top(reference_counts(value)) for name, value in fields.items()}
        assert json.dumps(term_vector(title, body, comments, meta)) == json.dumps(expected)


def test_analysis_cache_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text._analysed, "kept", 3)
    text._analysed.clear()
    assert text.tokens("alpha beta gamma delta epsilon alpha") == reference_tokens(
        "alpha beta gamma delta epsilon alpha")
    assert len(text._analysed) <= 3


def test_a_words_terms_are_what_tokens_gives_for_it(doc_texts: list[tuple]) -> None:
    """Snippets and shared terms analyse word by word: the same terms as the index's."""
    words = {w for title, body, *_ in doc_texts for w in text._WORD.findall(f"{title}\n{body}")}
    words |= {"ZooKeeper", "naïve", "Größe", "HTTPServer2", "x", "the", "12345678"}
    assert all(list(text.word_terms(w)) == text.tokens(w) for w in words)
