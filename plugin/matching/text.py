"""Text analysis shared by indexing and querying: tokens, stop words, stems."""
from __future__ import annotations

import re
import threading
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterator
from itertools import chain
from typing import TypeVar

import Stemmer

# The Glasgow IR group's English stop-word list (as used by scikit-learn).
STOP_WORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although
always am among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere
are around as at back be became because become becomes becoming been before beforehand behind
being below beside besides between beyond bill both bottom but by call can cannot cant co con could
couldnt cry de describe detail do done down due during each eg eight either eleven else elsewhere
empty enough etc even ever every everyone everything everywhere except few fifteen fifty fill find
fire first five for former formerly forty found four from front full further get give go had has
hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself his how
however hundred i ie if in inc indeed interest into is it its itself keep last latter latterly
least less ltd made many may me meanwhile might mill mine more moreover most mostly move much must
my myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now
nowhere of off often on once one only onto or other others otherwise our ours ourselves out over
own part per perhaps please put rather re same see seem seemed seeming seems serious several she
should show side since sincere six sixty so some somehow someone something sometime sometimes
somewhere still such system take ten than that the their them themselves then thence there
thereafter thereby therefore therein thereupon these they thick thin third this those though three
through throughout thru thus to together too top toward towards twelve twenty two un under until up
upon us very via was we well were what whatever when whence whenever where whereafter whereas
whereby wherein whereupon wherever whether which while whither who whoever whole whom whose why
will with within without would yet you your yours yourself yourselves
""".split())

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # PyStemmer objects are not thread-safe: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        # No cache of its own: `_analysed` asks for each word once, so PyStemmer's cache rarely
        # hit and evicting from it cost several times the stemming (2/3 of analysing a new word).
        stemmer = _local.stemmer = Stemmer.Stemmer("english", 0)
    return stemmer


def _keep(word: str) -> bool:
    if len(word) < 2 or len(word) > 40 or word in STOP_WORDS:
        return False
    return not (word.isdigit() and len(word) > 6)  # long numbers are ids and timestamps


def _parts(raw: str) -> list[str]:
    """A word lower-cased, and a camelCase identifier's parts as well."""
    lower = raw.lower()
    if raw == lower or raw.isupper():
        return [lower]
    parts = _CAMEL.findall(raw)
    return [lower] + [p.lower() for p in parts] if len(parts) > 1 else [lower]


def _analyse(raw: str) -> tuple[str, ...]:
    kept = [w for w in _parts(raw) if _keep(w)]
    return tuple(_stemmer().stemWords(kept)) if kept else ()


K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """key -> compute(key), computed on first sight; started over once `kept` keys are held.

    A dict looked up through `__getitem__` (or `map(memo.__getitem__, keys)`) keeps the per-key
    path in C, where an lru_cache call costs more; starting over only costs computing again the
    keys in use.
    """

    def __init__(self, compute: Callable[[K], V], kept: int) -> None:
        super().__init__()
        self.compute, self.kept = compute, kept

    def __missing__(self, key: K) -> V:
        if len(self) >= self.kept:
            self.clear()
        value = self[key] = self.compute(key)
        return value


# Raw word (str, or ASCII bytes) -> its index terms.
_analysed: Memo[str | bytes, tuple[str, ...]] = Memo(
    lambda raw: _analyse(raw.decode("ascii") if isinstance(raw, bytes) else raw), 200_000)
# ASCII letters and digits kept, everything else a separator: for ASCII text (nearly all text)
# this splits exactly as _WORD does, but bytes.translate + split is several times faster.
_ASCII_SEPARATORS = bytes(c if c < 128 and chr(c).isalnum() else 32 for c in range(256))


def _raw_words(text: str) -> list[str] | list[bytes]:
    """The text's words as _WORD finds them (as bytes when the text is ASCII)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_SEPARATORS).split()
    return _WORD.findall(text)


def _terms(text: str) -> Iterator[str]:
    """The text's index terms in order, each word's from the cache."""
    # Words that give no term (stop words, single letters: a third of all words) are dropped
    # before chain, which otherwise makes an iterator of each empty tuple (2-3% fewer instructions).
    return chain.from_iterable(filter(None, map(_analysed.__getitem__, _raw_words(text))))


def words(text: str) -> list[str]:
    """Lower-case words, with camelCase identifiers also split into their parts."""
    return [w for raw in _WORD.findall(text) for w in _parts(raw) if _keep(w)]


def tokens(text: str) -> list[str]:
    """Index terms of a text: words, stop words removed, stemmed (cached per distinct word)."""
    return list(_terms(text))


def word_terms(word: str) -> tuple[str, ...]:
    """Index terms of one word as `_WORD` finds it: what `tokens` gives for it, without the split."""
    return _analysed[word.encode("ascii") if word.isascii() else word]


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of a text (each distinct word analysed once: long texts repeat a lot)."""
    # All in C: the split, the cached analysis of each word and the counting. Counter's own
    # counting loop straight into a dict: no Counter to build and copy (5% fewer instructions).
    counts: dict[str, int] = {}
    _count_elements(counts, _terms(text))
    return counts
