"""The engine's document: what a shard's Tantivy index holds of each item, and how it is built.

Text arrives already analysed (`plugin.matching.text`: words, stop words, stems), so queries,
the index and Inflow's own ranking agree on every term. Every term and person carries its site's
key (`42:disk:42`; `plugin.search.sites`): a query can only ever match its own site's documents,
and the term dictionary gives each site's own document frequencies.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import tantivy

from plugin.matching.roles import OWNING
from plugin.matching.vectors import FIELDS

SCHEMA_VERSION = 3  # bump when fields change meaning: shards are then rebuilt from the database
TOKENIZER = "inflow"
# How often a term of each field is repeated in `all`: title, body, comments, components/labels.
# One field whose term frequency sums the fields' weighted ones is BM25F (Robertson et al., 2004),
# and a single field keeps Tantivy's block-max WAND on the whole query.
FIELD_REPEATS = {"t": 5, "d": 2, "c": 1, "m": 3}
MAX_REPEATS = 40  # saturated long before this; bounds a pasted log's cost in the index
# The statement of an item (what a duplicate repeats): title twice, description, components and labels.
STATEMENT_REPEATS = {"t": 2, "d": 1, "m": 1}


def build_schema() -> tantivy.Schema:
    """The fields of an item document."""
    builder = tantivy.SchemaBuilder()
    # Signed: tantivy-py 0.27 builds a delete's term as i64, so deleting by a u64 field's value
    # silently deletes nothing (it searches them fine).
    builder.add_integer_field("tenant", indexed=True, fast=True)
    builder.add_integer_field("site", indexed=True, fast=True)
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("all", tokenizer_name=TOKENIZER, index_option="freq")
    builder.add_text_field("statement", tokenizer_name=TOKENIZER, index_option="freq")
    builder.add_text_field("project", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("people", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("owners", tokenizer_name="raw", index_option="basic")
    for name in FIELDS:  # each field's length: the site's average lengths for BM25F
        builder.add_unsigned_field(f"len_{name}", fast=True)
    builder.add_unsigned_field("n_people", fast=True)
    builder.add_unsigned_field("n_owners", fast=True)
    # The length of the item's statement vector (tf-idf) and the site's size when it was computed:
    # the indexer computes it again once the site has grown fourfold (`RENEW_GROWTH`).
    builder.add_float_field("norm", fast=True)
    builder.add_integer_field("basis", indexed=True, fast=True)
    return builder.build()


SCHEMA = build_schema()


def register(index: tantivy.Index) -> tantivy.Index:
    """Give an opened index the tokenizer its text fields name (Tantivy does not persist it)."""
    index.register_tokenizer(TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    return index


def _affixes(site: int) -> tuple[str, str]:
    """What the site's key puts before and after each of its terms and accounts."""
    # Before, so a site's terms are neighbours in the dictionary; after, so no site's terms share
    # the dictionary's suffix nodes with another's: a lookup then reads only its own site's part
    # of the file instead of nodes scattered over every site's.
    return f"{site}:", f":{site}"


def term(site: int, value: str) -> str:
    """A term or account as the index holds it: scoped to its site."""
    prefix, suffix = _affixes(site)
    return prefix + value + suffix


@dataclass(frozen=True)
class Entry:
    """What the index needs of one stored item."""

    item_id: int
    tenant_id: int
    site: int  # the key the site's documents share (`plugin.search.sites`)
    project: str | None
    terms: dict[str, dict[str, int]]
    people: dict[str, str]  # account -> best role
    norm: float  # the statement vector's length (`plugin.matching.similarity.statement_norms`)
    basis: int  # the site's number of items that norm's idf was computed with


def _weighted(site: int, terms: dict[str, dict[str, int]]) -> tuple[str, str]:
    """The `all` and `statement` texts: each term repeated by its field's weighted frequency."""
    prefix, suffix = _affixes(site)
    between = suffix + " " + prefix
    every: list[str] = []
    stated: list[str] = []
    for name, field in terms.items():
        repeats, said = FIELD_REPEATS.get(name, 0), STATEMENT_REPEATS.get(name, 0)
        by_tf: dict[int, list[str]] = defaultdict(list)
        for value, tf in field.items():
            by_tf[tf].append(value)
        # The terms of one frequency scoped and joined once, then the whole run repeated: the
        # order of terms is not indexed, and a string built per term was most of a document's cost.
        for tf, values in by_tf.items():
            once = prefix + between.join(values) + suffix + " "
            every.append(once * min(tf * repeats, MAX_REPEATS))
            if said:
                stated.append(once * min(tf * said, MAX_REPEATS))
    return "".join(every), "".join(stated)


def document(entry: Entry) -> tantivy.Document:
    """The Tantivy document of an item."""
    site = entry.site
    doc = tantivy.Document()
    doc.add_integer("tenant", entry.tenant_id)
    doc.add_integer("site", entry.site)
    doc.add_integer("id", entry.item_id)
    every, stated = _weighted(site, entry.terms)
    doc.add_text("all", every)
    doc.add_text("statement", stated)
    if entry.project:
        doc.add_text("project", term(site, entry.project))
    owners = [a for a, role in entry.people.items() if role in OWNING]
    _add_all(doc, "people", (term(site, a) for a in entry.people))
    _add_all(doc, "owners", (term(site, a) for a in owners))
    for name in FIELDS:
        doc.add_unsigned(f"len_{name}", sum((entry.terms.get(name) or {}).values()))
    doc.add_unsigned("n_people", len(entry.people))
    doc.add_unsigned("n_owners", len(owners))
    doc.add_float("norm", entry.norm)
    doc.add_integer("basis", entry.basis)
    return doc


def _add_all(doc: tantivy.Document, field: str, values: Iterable[str]) -> None:
    for value in values:
        doc.add_text(field, value)
