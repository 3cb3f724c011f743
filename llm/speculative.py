"""Prompt-lookup speculative decoding for greedy generation.

The idea: a decode step reads all the weights once, so a batch of a few tokens can cost little more than one
token. (On this project's 2-core CPU it did not: a 9-token batch cost about three single steps, and drafting
is off by default; docs/llm.md.) The agent's outputs copy much of their context (a tool call repeats the question's phrases and
the tool names of the system prompt; an answer repeats product names and numbers from the tool results), so
the tokens that followed the latest earlier occurrence of the last few generated tokens are a cheap draft. One
batch evaluates the next token plus the draft; the draft is kept up to its first token that greedy decoding
would not have picked, and the KV cache is cut back to there. Every emitted token is the argmax of the model's
logits at its position, as in one-token-at-a-time greedy decoding; only the floating-point grouping of the
batched matmuls differs (``tests/test_speculative.py``; docs/llm.md measures the speed and compares outputs).

The loop is backend-neutral: it drives ``decode(tokens) -> logits rows`` and ``rollback(n)`` callbacks, which
:class:`llm.engines.LlamaCppEngine` implements on llama.cpp.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np


@dataclass
class DraftStats:
    """How the drafts fared in one generation."""

    steps: int = 0          # batched decode calls
    drafted: int = 0        # draft tokens evaluated
    accepted: int = 0       # draft tokens kept


def lookup_draft(ids: Sequence[int], *, n_draft: int, max_ngram: int = 3, min_ngram: int = 1) -> list[int]:
    """Up to ``n_draft`` tokens that followed the latest earlier occurrence of the longest suffix of ``ids``
    of ``max_ngram`` down to ``min_ngram`` tokens; ``[]`` when none occurred before."""
    n = len(ids)
    if n_draft <= 0 or n < 2:
        return []
    arr = np.asarray(ids)
    for size in range(min(max_ngram, n - 1), min_ngram - 1, -1):
        # windows of arr[:-1] start at 0 .. n-1-size, so the suffix itself (starting at n-size) is excluded
        windows = np.lib.stride_tricks.sliding_window_view(arr[:-1], size)
        hits = np.flatnonzero((windows == arr[n - size:]).all(axis=1))
        if hits.size:
            start = int(hits[-1]) + size
            return arr[start:start + n_draft].tolist()
    return []


def _argmax(row: np.ndarray, banned: Sequence[int]) -> int:
    if banned:
        row = row.copy()
        row[list(banned)] = -np.inf
    return int(np.argmax(row))


def speculative_greedy(context: Sequence[int], first_logits: np.ndarray,
                       decode: Callable[[list[int]], np.ndarray], rollback: Callable[[int], None], *,
                       capacity: int, n_draft: int, max_ngram: int = 3, min_ngram: int = 1,
                       banned: Sequence[int] = (), stats: DraftStats | None = None) -> Iterator[int]:
    """Yield greedy tokens after ``context`` (already evaluated; ``first_logits`` = the logits after its last
    token), drafting from the context and the output so far.

    ``decode(tokens)`` evaluates ``tokens`` after everything evaluated so far and returns their logits rows
    (``len(tokens) x vocab``; row i = the prediction after ``tokens[i]``; the rows may be a view that the next
    call overwrites). ``rollback(n)`` forgets the last ``n`` evaluated tokens. At most ``capacity`` tokens are
    evaluated (the context window's room). ``banned`` token ids are never picked. The caller stops the
    generator when it has enough (end of turn, token budget); tokens already yielded are evaluated lazily, so
    nothing is decoded past what the caller consumed but the last batch.
    """
    stats = stats if stats is not None else DraftStats()
    ids = list(context)
    token = _argmax(first_logits, banned)
    evaluated = 0
    while True:
        yield token
        ids.append(token)
        room = capacity - evaluated - 1
        if room < 0:
            return
        draft = lookup_draft(ids, n_draft=min(n_draft, room), max_ngram=max_ngram, min_ngram=min_ngram)
        rows = decode([token, *draft])
        evaluated += 1 + len(draft)
        stats.steps += 1
        stats.drafted += len(draft)
        kept = 0
        token = _argmax(rows[0], banned)
        while kept < len(draft) and token == draft[kept]:
            kept += 1
            stats.accepted += 1
            yield token
            ids.append(token)
            token = _argmax(rows[kept], banned)
        if kept < len(draft):
            rollback(len(draft) - kept)
            evaluated -= len(draft) - kept
