"""Reuse ranking: similar earlier items, answered and helpful ones first."""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from plugin.matching import semantic, similarity
from plugin.matching.packed import Packed
from plugin.matching.similarity import Statistics, Vector
from plugin.matching.text import word_terms
from plugin.models.content import Item

RESOLVED_BOOST = 0.05  # answered items win near-ties; more than that buries the open duplicate
HELPFUL_BOOST = 0.3
NOT_RELEVANT_PENALTY = 0.3
COSINE_SHARE = 0.8
# Duplicates and reusable answers cluster in time (the same release, the same outage), so
# among similar items the ones near the target's date are a little likelier to be the match.
TIME_SHARE = 0.5
TIME_HALF_LIFE_DAYS = 365.0
# A duplicate is usually filed under nearly the same title: title-to-title agreement on its own.
TITLE_SHARE = 0.25
# ... and in meaning, where the words differ (`plugin.matching.semantic`): chosen on the replays
# of three real trackers, in the middle of the weights (0.2 to 0.3) that gained on all three.
MEANING_SHARE = 0.25
# The cosine scores the statement's heaviest terms only: the light tail is mostly common words.
COSINE_TERMS = 40
EXACT_TOP = 20


@dataclass
class ReuseSuggestion:
    """An earlier item worth reusing, with why it was suggested."""

    item_id: int
    source: str
    key: str
    title: str
    url: str | None
    status: str | None
    resolution: str | None
    snippet: str
    score: float
    reasons: list[str] = field(default_factory=list)
    # Offsets [start, end) into `snippet` of its words that match the query, for highlighting.
    # Rows stored before these fields existed load with them empty.
    snippet_marks: list[list[int]] = field(default_factory=list)
    shared_terms: list[str] = field(default_factory=list)  # the distinctive words both items use


@dataclass(slots=True)
class Candidate:
    """An item the engine found, with what ranking reads of it (its terms are in its `Pool`)."""

    item_id: int
    resolved: bool
    helpful: int
    not_relevant: int
    created: float  # epoch seconds
    norm: float = 0.0  # its statement's tf-idf length, as the engine holds it
    norm_is_current: bool = False  # computed on the site as it is now (as many items)
    title_vector: bytes | None = None  # `plugin.matching.semantic`, as stored


@dataclass(frozen=True)
class Pool:
    """The candidates of one target, their packed term vectors, and how to read their full vectors."""

    items: list[Candidate]
    packed: Packed
    # The named term vectors of some of the items, by id ({} for one deleted since): exact norms
    # need each term's own statistics, which only its name finds.
    vectors: Callable[[list[int]], list[Vector]]

    def without(self, exclude: set[int]) -> Pool:
        """The pool without the excluded items."""
        keep = [n for n, c in enumerate(self.items) if c.item_id not in exclude]
        if len(keep) == len(self.items):
            return self
        return Pool([self.items[n] for n in keep], self.packed.take(keep), self.vectors)


def is_resolved(resolution: str | None, status: str | None) -> bool:
    """Whether an item counts as answered: a real resolution, or a done-like status."""
    if resolution:
        return resolution.strip().lower() not in ("unresolved", "")
    return (status or "").strip().lower() in ("done", "resolved", "closed", "answered")


def prior(doc: Candidate, at: float | None = None) -> float:
    """Multiplier for answered, feedback-rated and (when the target's time is known) nearby items."""
    boost = 1.0 + (RESOLVED_BOOST if doc.resolved else 0.0)
    if at is not None:
        days = abs(at - doc.created) / 86400.0
        boost *= (1.0 - TIME_SHARE) + TIME_SHARE * 0.5 ** (days / TIME_HALF_LIFE_DAYS)
    boost *= 1.0 + HELPFUL_BOOST * math.log1p(doc.helpful)
    return boost / (1.0 + NOT_RELEVANT_PENALTY * math.log1p(doc.not_relevant))


def fuse(bm25: np.ndarray, cosine: np.ndarray) -> np.ndarray:
    """Cosine plus BM25 scaled to the best match: both views agree on a good candidate."""
    top = float(bm25.max()) if len(bm25) else 0.0
    return COSINE_SHARE * cosine + (1.0 - COSINE_SHARE) * (bm25 / top if top > 0 else bm25)


def _listed(stats: Statistics) -> Callable[[list[str], np.ndarray], np.ndarray]:
    """Today's cosine idf of distinct terms, from the dictionary's counts (no postings read)."""
    return lambda terms, _held: np.fromiter((stats.cosine_idf(t, exact=False) for t in terms),
                                            dtype=np.float64, count=len(terms))


def heaviest(cosine_query: dict[str, float]) -> dict[str, float]:
    """The statement's `COSINE_TERMS` heaviest terms, the ones the cosine scores."""
    return dict(sorted(cosine_query.items(), key=lambda tw: (-tw[1], tw[0]))[:COSINE_TERMS])


@dataclass(frozen=True)
class Ranked:
    """A target's best candidates two ways: by words and meaning (what reuse shows), and by words
    alone (the neighbours whose people experts are drawn from: meaning did not help there)."""

    reuse: list[tuple[int, float]]
    neighbours: list[tuple[int, float]]


def rank(stats: Statistics, averages: np.ndarray, pool: Pool, query: dict[str, float],
         heaviest: dict[str, float], exclude: set[int], k: int, at: float | None = None,
         title: set[str] | None = None, meaning: np.ndarray | None = None) -> Ranked:
    """The pool's k best, by words and meaning and by words alone (priors applied, excluded left out).

    `meaning`: the target's title vector (`plugin.matching.semantic`), compared with each candidate's.
    """
    pool = pool.without(exclude)
    if not pool.items:
        return Ranked([], [])
    scores = _scores(stats, averages, pool, query, heaviest, title)
    by_words = _best(pool.items, scores, k, at)
    if meaning is None:
        return Ranked(by_words, by_words)
    # Only for items that matched some words: meaning reorders, it does not find.
    near = scores + MEANING_SHARE * semantic.agreement(meaning, [c.title_vector for c in pool.items]) * (scores > 0)
    return Ranked(_best(pool.items, near, k, at), by_words)


def _scores(stats: Statistics, averages: np.ndarray, pool: Pool, query: dict[str, float],
            heaviest: dict[str, float], title: set[str] | None) -> np.ndarray:
    """Each candidate's agreement with the target in words: BM25F, statement cosine, title."""
    packed = pool.packed
    bm25 = similarity.bm25f(stats, packed, query, averages)
    norms = np.array([c.norm for c in pool.items], dtype=np.float64)
    dots = similarity.statement_dots(stats, packed, heaviest)
    cosine = similarity.over_norms(dots, norms)
    titles = TITLE_SHARE * similarity.title_agreement(stats, packed, title) if title else 0.0
    scores = fuse(bm25, cosine) + titles
    # The index's norms date from when each item was indexed (renewed as the site grows fourfold): the
    # best matches, whose order matters most, get theirs from today's statistics, unless theirs
    # were computed on the site as it is (then they are today's, and a small site rarely changes).
    top = np.array([n for n in np.argsort(-scores, kind="stable")[:EXACT_TOP]
                    if not pool.items[n].norm_is_current], dtype=np.int64)
    if len(top):
        vectors = pool.vectors([pool.items[n].item_id for n in top])
        norms[top] = similarity.statement_norms(vectors, _listed(stats))
        cosine = similarity.over_norms(dots, norms)
    return fuse(bm25, cosine) + titles


def _best(items: list[Candidate], scores: np.ndarray, k: int, at: float | None) -> list[tuple[int, float]]:
    """The k best by score with priors; priors reorder the best matches, never lift an item that matched nothing."""
    best = sorted((n for n in range(len(items)) if scores[n] > 0), key=lambda n: (-scores[n], items[n].item_id))
    out = [(items[n].item_id, float(scores[n]) * prior(items[n], at)) for n in best[:k * 3]]
    out.sort(key=lambda pair: (-pair[1], pair[0]))
    return out[:k]


# A sentence ends at whitespace after . ! or ?, or at a line break. Matching the punctuation (kept
# with its sentence) rather than looking behind for it lets the regex skip ahead: 20 times faster.
_BREAK = re.compile(r"[.!?]\s+|\n+")
SNIPPET_SENTENCES = 60
SNIPPET_SIZE = 200
SHARED_TERMS = 4  # distinctive words named in a reason: more reads as noise
MAX_REASONS = 5
_WORD = re.compile(r"[^\W_]+")
_URL = re.compile(r"\b(?:https?|ftp)://\S+")
# A Java-style exception or error class, optionally package-qualified: "java.io.IOException",
# "KeeperException$ConnectionLossException". A bare "Error" or "Exception" is only a word.
_EXCEPTION = re.compile(r"\b(?:[a-z_][\w]*\.)*([A-Z][\w$]*(?:Exception|Error))\b")
# A stack frame: "at org.apache.zookeeper.server.DataTree.processTxn(DataTree.java:123)".
_FRAME = re.compile(r"^[\s|]*(?:\[\w+\]\s*)?at\s+([\w$.<>/]+)\(")  # "[junit] at ..." from Ant too
# Frames of the runtime and test harnesses: every trace has them, so they tell nothing apart.
_LIBRARY_FRAMES = ("java.", "javax.", "jdk.", "sun.", "com.sun.", "org.junit.", "junit.", "org.testng.",
                   "org.mockito.", "kotlin.", "scala.", "groovy.", "org.codehaus.groovy.")
# A line that belongs to a trace rather than prose: a frame, "... 12 more", "Caused by:", a
# bare "pkg.SomeException: message" header.
_TRACE_LINE = re.compile(r"^\s*(?:\[\w+\]\s*)?(?:at\s+[\w$.<>/]+\(|\.\.\. \d+ (?:more|common frames omitted)|Caused by:"
                         r"|(?:[a-z_][\w]*\.)+[A-Z][\w$]*(?:Exception|Error)(?::|\s*$))")

# A log line: it starts with a date, a time or a level ("2006-01-13 18:00:04,620 [main] WARN ...",
# "INFO TransportConnector - ..."), or names a level within its first words.
_LOG_LINE = re.compile(r"^\s*(?:\[?\d{4}-\d\d-\d\d|.{0,40}?\b\d{1,2}:\d\d:\d\d\b"
                       r"|.{0,60}?\b(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b)")
# A line of code or configuration: braces, an assignment, a statement's semicolon.
_CODE = re.compile(r"[{}]| = |;\s*$")
# A name alone: "org.apache.activemq.store.kahadb.data.KahaAddMessageCommand", "v5.14.5".
_DOTTED = re.compile(r"[\w$-]+(?:\.[\w$-]+){2,}[.:]?")
# "doesn't" is found as the words "doesn" and "t": the first is no word anyone wrote alone.
_NOT = ("'t", "’t")


@dataclass(frozen=True)
class Snippet:
    """A passage of an item's text, and the (start, end) offsets of the query terms in it."""

    text: str
    marks: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class Viewed:
    """What reasons compare a suggestion with: the item being viewed, as far as it is known."""

    text: str = ""
    meta: frozenset[str] = frozenset()
    key: str | None = None
    source: str | None = None
    space: str | None = None
    links: frozenset[str] = frozenset()


def sentences(text: str, limit: int = SNIPPET_SENTENCES) -> list[str]:
    """The first `limit` non-blank sentences of a text, stripped."""
    out: list[str] = []
    start = 0
    for match in _BREAK.finditer(text):
        end = match.start() + (text[match.start()] in ".!?")
        piece = text[start:end].strip()
        start = match.end()
        if piece:
            out.append(piece)
            if len(out) >= limit:
                return out
    piece = text[start:].strip()
    return out + [piece] if piece else out


def _numeric(word: str) -> bool:
    """Whether a word is more digits than letters: a line number, a port, a version, a time."""
    return not word.isalpha() and sum(c.isdigit() for c in word) > sum(c.isalpha() for c in word)


def marks(text: str, weights: dict[str, float]) -> list[list[int]]:
    """[start, end] of each word of the text whose terms are among the query's (numbers, pieces
    of links and halves of contractions left out: shared by chance, they point at nothing a
    reader looks for)."""
    links = [(m.start(), m.end()) for m in _URL.finditer(text)]
    return [[m.start(), m.end()] for m in _WORD.finditer(text)
            if not _numeric(m.group()) and not any(a <= m.start() < b for a, b in links)
            and text[m.end():m.end() + 2] not in _NOT and any(t in weights for t in word_terms(m.group()))]


def _worth(piece: str, weights: dict[str, float], stem: Callable[[str], list[str]]) -> float:
    """The summed weight of the distinct query terms a piece of text holds."""
    # fsum, exactly rounded: a plain sum depends on its order (a set's varies from process to
    # process), and the same terms must weigh the same in any sentence, or a repeat outweighs what
    # it repeats.
    return math.fsum(weights.get(t, 0.0) for t in set(stem(piece)))


def _traced(line: str) -> bool:
    """Whether a line belongs to a stack trace or a log."""
    return bool(_TRACE_LINE.match(line) or _LOG_LINE.match(line))


def _machine(piece: str) -> bool:
    """Whether a piece of text is machine output: a trace, a log line, a line of code, a dotted
    name alone, or mostly a link (its percent-encoded path matches query words by chance)."""
    linked = sum(len(link) for link in _URL.findall(piece))
    return (_traced(piece) or bool(_CODE.search(piece)) or 2 * linked > len(piece)
            or _DOTTED.fullmatch(piece) is not None)


def _in_machine_line(text: str, piece: str) -> bool:
    """Whether the piece is a sentence of a trace or log line of the text.

    Why: a log line's sentences after its first ("...db-3035.log) | org.apache.activemq.broker.
    BrokerService | main") no longer start like a log line. Asked only of the few sentences
    that match the query, not of every line of every text.
    """
    at = max(text.find(piece), 0)
    end = text.find("\n", at)
    return _traced(text[text.rfind("\n", 0, at) + 1:end if end >= 0 else len(text)])


def _head(text: str, size: int) -> str:
    """The text's first `size` characters, ended at a word break when it is cut."""
    if len(text) <= size:
        return text
    cut = text[:size]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return cut[:space] if space > 0 else cut


def _untraced(text: str) -> str:
    """The text without its stack-trace and log lines."""
    return "\n".join(line for line in text.splitlines() if not _traced(line))


def _best_passage(text: str, found: list[str], weights: dict[str, float],
                  stem: Callable[[str], list[str]], size: int) -> str:
    """The sentence, or two adjacent ones that fit, holding the weightiest query terms."""
    worth = [_worth(s, weights, stem) for s in found]

    def machine(n: int) -> bool:
        return _machine(found[n]) or _in_machine_line(text, found[n])

    # Prose explains; a trace, log or code line matches on names alone. Those only when nothing else does.
    # Best first, so the look at a sentence's whole line is mostly taken for one sentence.
    matching = sorted((n for n in range(len(found)) if worth[n] > 0), key=lambda n: (-worth[n], n))
    best = next((n for n in matching if not machine(n)), matching[0] if matching else None)
    if best is None:
        return ""
    chosen = found[best]
    after = best + 1
    if after < len(found) and not machine(after) and len(chosen) + 1 + len(found[after]) <= size:
        pair = chosen + " " + found[after]
        if _worth(pair, weights, stem) > worth[best]:  # the second sentence adds a term
            chosen = pair
    return chosen


def _cut(passage: str, weights: dict[str, float], size: int) -> str:
    """The passage cut to about `size` characters at word breaks, keeping its first match in view."""
    if len(passage) <= size:
        return passage
    spans = marks(passage, weights)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - size // 4, len(passage) - size))
    if start:
        space = passage.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = start + size
    if end < len(passage):
        space = passage.rfind(" ", start, end)
        end = space if space > start else end
    return ("…" if start else "") + passage[start:end].strip() + ("…" if end < len(passage) else "")


def passage(text: str, weights: dict[str, float], stem: Callable[[str], list[str]],
            size: int = SNIPPET_SIZE) -> Snippet:
    """The passage of the text matching the query best, with its matched words marked.

    Empty when no sentence holds a query term: an arbitrary first line explains nothing.
    """
    head = _head(text, 20_000)
    chosen = _best_passage(head, sentences(head), weights, stem, size)
    if not chosen:
        return Snippet("")
    cut = _cut(chosen, weights, size)
    return Snippet(cut, marks(cut, weights))


def snippet(text: str, terms: set[str], stem: Callable[[str], list[str]], size: int = SNIPPET_SIZE) -> str:
    """The best-matching passage of the text as plain text, every query term weighing the same."""
    return passage(text, dict.fromkeys(terms, 1.0), stem, size).text


def shared_terms(text: str, weights: dict[str, float], limit: int = SHARED_TERMS) -> list[str]:
    """The query's weightiest terms in the text's prose, as the text spells them (not as stems).

    Trace and log lines are left out: their package, host and thread names are rare, hence weighty,
    and shared by every trace or log of the same code; the error reason speaks for traces.
    """
    whole: dict[str, str] = {}  # term -> the first word that is that term on its own
    part: dict[str, str] = {}  # term -> the first camelCase word holding it as a part
    # A link's path and a timestamp's pieces ("23T05", "000Z") are no words anyone wrote.
    # Each distinct word once, first mention first: a long text repeats most of its words.
    for word in dict.fromkeys(_WORD.findall(_URL.sub(" ", _untraced(text)))):
        if _numeric(word):
            continue  # line numbers, ports, versions, times: shared by chance, telling nobody anything
        for n, term in enumerate(word_terms(word)):
            if term in weights:
                (whole if n == 0 else part).setdefault(term, word)
    spelled = {**part, **whole}
    best = sorted(spelled, key=lambda t: (-weights[t], t))
    out: list[str] = []
    for term in best:
        # Looked for in the words picked only: a pass over the whole text cost as much as the rest.
        if spelled[term] not in out and not any(spelled[term] + end in text for end in _NOT):
            out.append(spelled[term])
        if len(out) >= limit:
            break
    return out


def errors(text: str) -> list[str]:
    """Exception class names a text mentions (without their package), first mention first."""
    return list(dict.fromkeys(m.group(1) for m in _EXCEPTION.finditer(text)))


def top_frames(text: str) -> list[str]:
    """Each stack trace's first application frame ("pkg.Class.method"), first trace first."""
    out: list[str] = []
    looking = in_trace = False
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match is None:
            in_trace = False
            continue
        looking = looking or not in_trace  # a frame after a non-frame line starts a trace
        in_trace = True
        if looking and not match.group(1).startswith(_LIBRARY_FRAMES):
            out.append(match.group(1))
            looking = False
    return list(dict.fromkeys(out))


def _short_frame(frame: str) -> str:
    """"org.apache.zookeeper.server.DataTree.processTxn" as people say it: "DataTree.processTxn"."""
    return ".".join(frame.split(".")[-2:])


@functools.lru_cache(maxsize=16)
def _failures(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A text's exceptions and top frames, kept: the viewed item's are compared with every suggestion."""
    return tuple(errors(text)), tuple(top_frames(text))


def same_error(mine: str, theirs: str) -> str | None:
    """The reason two texts fail alike: the same exception, the same top frame, or both."""
    my_errors, my_frames = _failures(mine)
    theirs_errors = set(errors(theirs))
    error = next((e for e in my_errors if e in theirs_errors), None)
    theirs_frames = set(top_frames(theirs))
    frame = next((f for f in my_frames if f in theirs_frames), None)
    if error and frame:
        return f"same error: {error} at {_short_frame(frame)}"
    if error:
        return f"same error: {error}"
    if frame:
        return f"fails in the same place: {_short_frame(frame)}"
    return None


def _quoted(words: list[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


def _linked(item: Item, viewed: Viewed, similar: set[str]) -> str | None:
    """A link the item has to the viewed item, or to an item the viewed one or a suggestion is."""
    links = list(item.links or [])
    if viewed.key and viewed.source == item.source and viewed.key in links:
        return "already linked to this item"
    both = [k for k in links if k in viewed.links]
    if both:
        return f"both linked to {', '.join(both[:2])}"
    suggested = [k for k in links if k in similar]
    return f"linked to {', '.join(suggested[:2])}, also suggested" if suggested else None


# The reasons `_linked` writes that name other items by key.
_NAMING = re.compile(r"(?:both linked to (.+)|linked to (.+), also suggested)\Z")


def named_keys(reason: str) -> list[str]:
    """The keys of the other items a reason names (a link's), none for the other reasons."""
    match = _NAMING.match(reason)
    return (match.group(1) or match.group(2)).split(", ") if match else []


def _same_place(item: Item, viewed: Viewed) -> list[str]:
    """Shared components, labels and (for pages) the same space."""
    out: list[str] = []
    components = [c for c in item.components or [] if c in viewed.meta]
    if components:
        out.append("same component: " + ", ".join(components[:3]))
    labels = [c for c in item.labels or [] if c in viewed.meta and c not in components]
    if labels:
        out.append("same label: " + ", ".join(labels[:3]))
    if item.source == "confluence" and item.space and item.space == viewed.space:
        out.append(f"same space: {item.space}")
    return out


def _settled(item: Item) -> list[str]:
    """Whether people found the item helpful, and how it ended."""
    out: list[str] = []
    if item.helpful_count:
        out.append(f"helped {item.helpful_count} {'person' if item.helpful_count == 1 else 'people'} before")
    if item.resolution and item.resolution.strip().lower() != "unresolved":
        out.append(f"resolved ({item.resolution})")
    return out


def reasons(item: Item, body: str, viewed: Viewed, weights: dict[str, float],
            similar: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Why an item was suggested, strongest first, from evidence both items hold; and the words they share."""
    text = f"{item.title}\n{_head(body, 20_000)}"
    words = shared_terms(text, weights)
    error = same_error(viewed.text, text)
    named = [w for w in words if not error or w not in error]  # the error reason names its own words
    found = [_linked(item, viewed, similar or set()), error, f"shares {_quoted(named)}" if named else None]
    out = [r for r in found if r] + _same_place(item, viewed) + _settled(item)
    return (out[:MAX_REASONS] or ["similar text"]), words
