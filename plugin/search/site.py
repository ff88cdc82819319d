"""One site's view of its shard for one ranking: its own statistics and its candidates.

Every statistic is the site's own, read from the shard's term dictionary through the site
prefix of each term: how many of its items there are, how many hold a term, how many items a
person worked on. Only field-length averages and the share of "owning" roles need a pass over
the site's documents; they drift slowly and are kept per site in a small bounded cache.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tantivy

from plugin.matching.vectors import FIELDS
from plugin.search.schema import SCHEMA, term

# A site's averages are recomputed when its number of items moved more than this share.
DRIFT = 0.01
AVERAGES_KEPT = 4096  # sites whose averages one process keeps (least recently used dropped)
# The term dictionary counts a replaced item's old version until its segment is merged; items
# updated often (the active ones) leave many. Terms held by few items are counted exactly
# (reading at most this many postings), where an old copy would move the idf most; the
# frequency of common terms is scaled by the share of the site's documents that are current.
EXACT_BELOW = 2_000
# An item's statement norm is computed again once its site has grown this many times over since.
# idf follow the ratio of a site's size to a term's count, which a growing site mostly keeps, and
# ranking recomputes the best candidates' norms anyway; renewing at each doubling wrote a site
# built from scratch about twice over.
RENEW_GROWTH = 4


@dataclass(frozen=True)
class Averages:
    """Per-site means that need a pass over its documents."""

    count: int  # the number of documents they were computed over (replaced versions included)
    current: float  # the share of those documents that are current (not replaced or deleted)
    lengths: np.ndarray  # mean length of each field (title, body, comments, meta)
    owning_share: float  # share of people's appearances on items that were doing the work


_averages: OrderedDict[tuple[str, int], Averages] = OrderedDict()
_averages_lock = threading.Lock()


class CurrentCounts:
    """Exact counts of current documents per term, kept while the term dictionary's count stands.

    A term's listed count rises with every added or replaced document holding it and falls when
    a merge drops old versions; the current count cannot change without the listed one moving,
    but for a plain deletion. So a count read once is reused until the listed count moves
    (bounded: the least recently used are dropped), and counting postings is rare in steady state.
    """

    def __init__(self, kept: int = 200_000) -> None:
        self.kept = kept
        self._counts: OrderedDict[tuple[str, str, str], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def current(self, searcher: tantivy.Searcher, identity: str, field: str, key: str, listed: int) -> int:
        """How many current documents hold `key` in `field`, `listed` being the dictionary's count."""
        slot = (identity, field, key)
        with self._lock:
            found = self._counts.get(slot)
            if found is not None and found[0] == listed:
                self._counts.move_to_end(slot)
                return found[1]
        count = searcher.search(tantivy.Query.term_query(SCHEMA, field, key), 1, count=True).count  # type: ignore[attr-defined]
        with self._lock:
            self._counts[slot] = (listed, count)
            self._counts.move_to_end(slot)
            while len(self._counts) > self.kept:
                self._counts.popitem(last=False)
        return count


COUNTS = CurrentCounts()

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _searches() -> ThreadPoolExecutor:
    """This process's threads for concurrent searches (a forked child starts its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="inflow-search"))
        return _pool[1]


def _compute_averages(searcher: tantivy.Searcher, site: int) -> Averages:
    aggs = {f"len_{name}": {"sum": {"field": f"len_{name}"}} for name in FIELDS}
    aggs |= {"n": {"value_count": {"field": "len_t"}}, "people": {"sum": {"field": "n_people"}},
             "owners": {"sum": {"field": "n_owners"}}}
    found = searcher.aggregate(tantivy.Query.term_query(SCHEMA, "site", site), aggs)
    count = int(found["n"]["value"] or 0)  # aggregations see current documents only
    listed = searcher.doc_freq("site", site)
    sums = np.array([found[f"len_{name}"]["value"] or 0.0 for name in FIELDS], dtype=np.float64)
    people = float(found["people"]["value"] or 0.0)
    share = float(found["owners"]["value"] or 0.0) / people if people else 0.5
    return Averages(listed, count / listed if listed else 1.0, np.maximum(sums / max(count, 1), 1.0), share)


class Hit(NamedTuple):
    """An item the engine found: its id, the engine's score, its statement's norm and the site's
    size that norm was computed at."""

    item_id: int
    score: float
    norm: float
    basis: int = -1


class SiteView:
    """A site's statistics and candidate search on one searcher (one commit of its shard).

    `members` are the site's tenants (one per product) whose documents a search may return.
    """

    def __init__(self, searcher: tantivy.Searcher, identity: str, site: int, members: tuple[int, ...] = ()) -> None:
        self.searcher, self.identity, self.site, self.members = searcher, identity, site, members
        self.listed = searcher.doc_freq("site", site)  # replaced versions included
        self._df: dict[str, float] = {}
        self._listed: dict[str, int] = {}
        self._averages: Averages | None = None
        self.current = self.averages().current  # the share of listed documents that are current
        self.count = self.listed * self.current  # the site's items
        # A small site none of whose documents awaits a merge (replaced or deleted): then every
        # count in the term dictionary is exact, and no term's postings need counting. One count
        # here instead of one per rare term (nearly every term of a small site), and none of the
        # cached counts, which can be stale: a merge dropping old versions and new versions
        # added since can bring a term's listed count back to the value a count was kept for.
        self.settled = 0 < self.listed <= EXACT_BELOW and searcher.search(
            tantivy.Query.term_query(SCHEMA, "site", site), 1, count=True).count == self.listed  # type: ignore[attr-defined]

    def df(self, value: str, exact: bool = True) -> float:
        """How many of the site's items hold the term (in any field).

        `exact`: rare terms' postings are counted; otherwise the term dictionary's count is
        scaled to the site's current share (no postings read: for many terms at once).
        """
        listed = self._listed.get(value)
        if listed is None:
            listed = self._listed[value] = self.searcher.doc_freq("all", term(self.site, value))
        if self.settled:
            return float(listed)
        if not exact or not 0 < listed <= EXACT_BELOW:
            return listed * self.current
        found = self._df.get(value)
        if found is None:
            found = self._df[value] = COUNTS.current(self.searcher, self.identity, "all",
                                                     term(self.site, value), listed)
        return found

    def idf(self, value: str, exact: bool = True) -> float:
        """BM25 inverse document frequency of a term in this site (0 for unknown terms)."""
        df = self.df(value, exact)
        if df <= 0:
            return 0.0
        return math.log(1.0 + (self.count - df + 0.5) / (df + 0.5))

    def cosine_idf(self, value: str, exact: bool = True) -> float:
        """Smoothed tf-idf inverse document frequency (0 for unknown terms)."""
        df = self.df(value, exact)
        if df <= 0:
            return 0.0
        return math.log((1.0 + self.count) / (1.0 + df)) + 1.0

    def averages(self) -> Averages:
        """The site's mean field lengths and owning share (recomputed once its size drifted)."""
        if self._averages is None:
            key = (self.identity, self.site)
            with _averages_lock:
                kept = _averages.get(key)
            if kept is None or abs(kept.count - self.listed) > DRIFT * max(kept.count, 1):
                kept = _compute_averages(self.searcher, self.site)
            with _averages_lock:
                _averages[key] = kept
                _averages.move_to_end(key)
                while len(_averages) > AVERAGES_KEPT:
                    _averages.popitem(last=False)
            self._averages = kept
        return self._averages

    def _people(self, field: str, account: str) -> float:
        key = term(self.site, account)
        listed = self.searcher.doc_freq(field, key)
        if self.settled:
            return float(listed)
        if 0 < listed <= EXACT_BELOW:
            return float(COUNTS.current(self.searcher, self.identity, field, key, listed))
        return listed * self.current

    def worked_on(self, accounts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(items each person worked on, items they did the work on) in this site."""
        touched = [self._people("people", a) for a in accounts]
        owned = [self._people("owners", a) for a in accounts]
        return np.array(touched, dtype=np.float64), np.array(owned, dtype=np.float64)

    def idf_with(self, values: list[str], added: np.ndarray, items: int) -> np.ndarray:
        """Smoothed idf of the terms once `items` new items join the site, `added` of them holding each."""
        current = self.averages().current
        held = np.fromiter((self.searcher.doc_freq("all", term(self.site, v)) for v in values),
                           dtype=np.float64, count=len(values)) * current + added
        return np.log((1.0 + self.count + items) / (1.0 + held)) + 1.0

    def candidates(self, weights: dict[str, float], k: int, field: str = "all") -> list[Hit]:
        """The k items best matching the weighted terms in one field (BM25), best first."""
        clauses = [(tantivy.Occur.Should, tantivy.Query.boost_query(
            tantivy.Query.term_query(SCHEMA, field, term(self.site, value)), weight))
            for value, weight in sorted(weights.items()) if weight > 0]
        if not clauses or k <= 0:
            return []
        return self._hits(self.searcher.search(tantivy.Query.boolean_query(clauses), k, count=False).hits)

    def candidates_at_once(self, searches: list[tuple[dict[str, float], int, str]]) -> list[list[Hit]]:
        """`candidates` for each (weights, k, field), the searches run at the same time.

        Why: Tantivy searches without holding the GIL, and at a million items each of a ranking's
        searches takes tens of milliseconds; one after the other they were half its time.
        """
        if not searches:
            return []
        first, *rest = searches
        pending = [_searches().submit(self.candidates, *search) for search in rest]
        return [self.candidates(*first)] + [future.result() for future in pending]

    def _hits(self, hits: list[tuple[float, tantivy.DocAddress]]) -> list[Hit]:
        addresses = [address for _, address in hits]
        ids = self.searcher.fast_field_values("id", addresses)
        owners = self.searcher.fast_field_values("tenant", addresses)
        norms = self.searcher.fast_field_values("norm", addresses)
        bases = self.searcher.fast_field_values("basis", addresses)
        # Terms carry the site already; the check costs one fast-field read and keeps a
        # mistake anywhere above from ever showing one site's item to another.
        return [Hit(int(i), float(score), float(norm or 0.0), int(basis if basis is not None else -1))
                for (score, _), i, owner, norm, basis in zip(hits, ids, owners, norms, bases, strict=False)
                if owner in self.members and i is not None]

    def stale_norms(self, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` (item, tenant) whose norm was computed when the site had a quarter of its items or fewer."""
        below = int(self.count // RENEW_GROWTH)
        if below < 1 or limit <= 0:
            return []
        query = tantivy.Query.boolean_query([
            (tantivy.Occur.Must, tantivy.Query.term_query(SCHEMA, "site", self.site)),
            (tantivy.Occur.Must, tantivy.Query.range_query(SCHEMA, "basis", tantivy.FieldType.Integer,
                                                           lower_bound=-1, upper_bound=below,
                                                           include_upper=False))])
        addresses = [address for _, address in self.searcher.search(query, limit, count=False).hits]
        ids = self.searcher.fast_field_values("id", addresses)
        tenants = self.searcher.fast_field_values("tenant", addresses)
        return [(int(i), int(t)) for i, t in zip(ids, tenants, strict=False) if i is not None and t is not None]
