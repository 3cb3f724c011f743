"""Okapi BM25 over the chunk texts, as a sparse matrix (one query = a few sparse row sums, well under 1 ms).

Tokens: lower-cased runs of letters/digits, a light plural stemmer (``cables`` -> ``cable``) and a tiny
stop-word list. Query words that are not in the vocabulary are corrected to a vocabulary word at edit
distance 1 (deletion-neighbourhood lookup, as in SymSpell), so "earphnes" still matches "earphones".
Rebuilt from ``chunks.json`` at load time (deterministic, about a second for the real catalog).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and are as at be by for from has have i in is it its me my of on or show the this to was what "
    "which with do does did you your any some about please want need looking find".split())
MIN_FUZZY_LEN = 4


def stem(token: str) -> str:
    """Very light stemmer: plural ``-es``/``-s`` only (keeps model numbers like ``s23`` intact)."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("ches", "shes", "sses", "xes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")) and not token[-2].isdigit():
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lower-case word/number tokens, stemmed, stop words removed."""
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class BM25Index:
    """BM25 scores of every chunk for a query; ``k1``/``b`` are the usual Okapi parameters."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(texts), dtype="float64")
        for doc, text in enumerate(texts):
            counts = Counter(tokenize(text))
            lengths[doc] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(vocab.setdefault(term, len(vocab)))
                cols.append(doc)
                tfs.append(tf)
        n_docs = max(1, len(texts))
        avgdl = float(lengths.mean()) if len(texts) else 1.0
        tf = np.asarray(tfs, dtype="float64")
        cols_a = np.asarray(cols, dtype="int64")
        rows_a = np.asarray(rows, dtype="int64")
        df = np.bincount(rows_a, minlength=len(vocab)).astype("float64")
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths[cols_a] / max(avgdl, 1e-9))
        weights = idf[rows_a] * tf * (k1 + 1) / (tf + norm)
        self.matrix = sparse.csr_matrix((weights, (rows_a, cols_a)), shape=(len(vocab), len(texts)))
        self.vocab = vocab
        self.idf = idf
        self.n_docs = len(texts)
        self._fuzzy: dict[str, list[str]] = defaultdict(list)
        for term in vocab:
            if len(term) >= MIN_FUZZY_LEN and not term.isdigit():
                for variant in _deletes(term):
                    self._fuzzy[variant].append(term)

    def correct(self, token: str) -> str | None:
        """A vocabulary word within edit distance 1 of ``token`` (most frequent wins), or None."""
        if token in self.vocab:
            return token
        if len(token) < MIN_FUZZY_LEN or token.isdigit():
            return None
        candidates: set[str] = set(self._fuzzy.get(token, ()))  # the token misses one character
        for variant in _deletes(token):
            if variant in self.vocab and len(variant) >= MIN_FUZZY_LEN:
                candidates.add(variant)  # the token has one extra character
            candidates.update(self._fuzzy.get(variant, ()))  # substitution / transposition
        if not candidates:
            return None
        # rarest-first would favour noise; prefer the most common word (lowest idf), then alphabetical
        return min(candidates, key=lambda t: (self.idf[self.vocab[t]], t))

    def query_terms(self, query: str) -> list[int]:
        """Vocabulary ids of the query's tokens (typos corrected, unknown words dropped)."""
        ids = []
        for token in tokenize(query):
            term = self.correct(token)
            if term is not None:
                ids.append(self.vocab[term])
        return ids

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (zeros when no query word is known)."""
        ids = self.query_terms(query)
        if not ids:
            return np.zeros(self.n_docs, dtype="float64")
        counts = Counter(ids)
        rows = self.matrix[list(counts)]
        if all(c == 1 for c in counts.values()):
            return np.asarray(rows.sum(axis=0)).ravel()
        weights = np.asarray([counts[i] for i in counts], dtype="float64")
        return np.asarray(rows.T @ weights).ravel()


def top_terms(texts: Iterable[str]) -> Counter:
    """Token frequencies over ``texts`` (helper for the evaluation's query builder)."""
    counter: Counter = Counter()
    for text in texts:
        counter.update(tokenize(text))
    return counter
