"""Title vectors: meaning that matches where the words differ ("broker loses messages on restart"
and "messages vanish after the broker restarts").

WordLlama's `l2_supercat_256` static embeddings (MIT; the `wordllama` wheel ships the weights and
the tokenizer, so nothing is downloaded): a title's vector is the mean of its tokens' vectors,
made unit length. Each item's is computed when it is stored and kept as 256 signed bytes; ranking
compares the target's title with its candidates' (`plugin.matching.reuse`). Titles only: their
vectors gained on every replay set, descriptions' added little at many times the cost.
"""
from __future__ import annotations

import functools
import importlib.util
import threading
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS = 256
SCALE = 127.0  # a unit vector's components fit in a signed byte at this scale
MAX_TOKENS = 64  # a title longer than this is a pasted paragraph; its start says what it is about
_lock = threading.Lock()


@functools.cache
def _model() -> tuple[Any, np.ndarray]:
    """The tokenizer and the (vocabulary x 256) float16 matrix, loaded once per process.

    Imported here: a process that only ranks stored items never needs them (nor their memory).
    """
    from safetensors import safe_open
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")  # its files only: importing it loads far more
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the wordllama package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as weights:
        matrix = weights.get_tensor("embedding.weight")
    return tokenizer, matrix


def vectors(titles: list[str]) -> np.ndarray:
    """Unit vectors of the titles, one row each (zeros for a title with no token)."""
    with _lock:  # the first call loads the model; one tokenizer is shared by the threads
        tokenizer, matrix = _model()
        encoded = [tokenizer.encode(title or "", add_special_tokens=False).ids for title in titles]
    out = np.zeros((len(titles), DIMENSIONS), dtype=np.float32)
    counts = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    rows = np.flatnonzero(counts)
    if not len(rows):
        return out
    # All titles' tokens in one gather and one sum per title: numpy calls per title cost more
    # than the arithmetic (a backfill stores thousands of items a second).
    ids = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=int(counts.sum()))
    starts = np.concatenate(([0], np.cumsum(counts[rows])[:-1]))
    means = np.add.reduceat(matrix[ids].astype(np.float32), starts, axis=0) / counts[rows, None]
    lengths = np.linalg.norm(means, axis=1)
    kept = lengths > 0
    out[rows[kept]] = means[kept] / lengths[kept, None]
    return out


def packed_titles(titles: list[str]) -> list[bytes]:
    """The stored form of each title's vector: 256 signed bytes (what the items table keeps)."""
    packed = np.clip(np.rint(vectors(titles) * SCALE), -127, 127).astype(np.int8)
    return [row.tobytes() for row in packed]


def unpack(packed: bytes) -> np.ndarray:
    """A stored vector as floats (about unit length)."""
    return np.frombuffer(packed, dtype=np.int8).astype(np.float32) / SCALE


def of_title(title: str, stored: bytes | None = None) -> np.ndarray:
    """A title's vector: the stored one when there is one (no model needed), else computed."""
    if stored is not None and len(stored) == DIMENSIONS:
        return unpack(stored)
    return vectors([title])[0]


def agreement(query: np.ndarray, packed: list[bytes | None]) -> np.ndarray:
    """How close each stored title vector is to the query's: cosine, 0 where unknown or opposed."""
    out = np.zeros(len(packed), dtype=np.float64)
    known = [(n, value) for n, value in enumerate(packed) if value is not None and len(value) == DIMENSIONS]
    if known and query.any():
        rows = np.frombuffer(b"".join(value for _, value in known), dtype=np.int8).reshape(len(known), DIMENSIONS)
        out[[n for n, _ in known]] = np.maximum(rows.astype(np.float32) @ query / SCALE, 0.0)
    return out
