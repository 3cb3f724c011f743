"""Prompt-lookup speculative decoding (``llm.speculative``): drafts, and greedy output identical to one token at
a time on a fake model whose KV cache is checked after every call; (slow) the same on the real llama.cpp engine."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from llm.speculative import DraftStats, lookup_draft, speculative_greedy

V = 12


def rule(history: list[int]) -> int:
    """A deterministic 'model': the next token after ``history``. Repeats stretches of the context (so drafts
    are often right) but not always (so they are also often wrong)."""
    a, b = history[-1], history[-2] if len(history) > 1 else 0
    return (a + 1) % V if (a + b) % 5 else (a * 7 + len(history)) % V


class FakeKV:
    """Evaluated tokens, like a KV cache; ``decode`` returns one-hot rows of ``rule`` after each position."""

    def __init__(self, context: list[int]) -> None:
        self.tokens = list(context)
        self.decodes: list[int] = []

    def row(self, upto: int) -> np.ndarray:
        out = np.full(V, -1.0)
        out[rule(self.tokens[:upto])] = 1.0
        return out

    def decode(self, batch: list[int]) -> np.ndarray:
        start = len(self.tokens)
        self.tokens += batch
        self.decodes.append(len(batch))
        return np.stack([self.row(start + i + 1) for i in range(len(batch))])

    def rollback(self, n: int) -> None:
        assert 0 < n < self.decodes[-1]  # only draft tokens of the last batch are taken back
        del self.tokens[-n:]


def plain_greedy(context: list[int], n: int, banned=()) -> list[int]:
    ids, out = list(context), []
    for _ in range(n):
        scores = np.full(V, -1.0)
        scores[rule(ids)] = 1.0
        scores[list(banned)] = -np.inf
        out.append(int(np.argmax(scores)))
        ids.append(out[-1])
    return out


def run(context: list[int], n: int, *, n_draft: int, banned=(), capacity: int = 10_000):
    kv = FakeKV(context)
    stats = DraftStats()
    gen = speculative_greedy(context, kv.row(len(context)), kv.decode, kv.rollback, capacity=capacity,
                             n_draft=n_draft, max_ngram=3, banned=banned, stats=stats)
    out = list(itertools.islice(gen, n))
    gen.close()
    return out, kv, stats


def test_lookup_draft_takes_the_latest_longest_match():
    assert lookup_draft([5, 1, 2, 9, 1, 2, 7, 8, 1, 2], n_draft=3) == [7, 8, 1]  # latest "1 2" -> 7 8 1
    assert lookup_draft([1, 2, 3, 4, 2, 3, 9, 3], n_draft=2) == [9, 3]  # only "3" occurred before: its latest
    assert lookup_draft([4, 2, 3, 5, 3, 6, 2, 3], n_draft=2) == [5, 3]  # the 2-gram "2 3" beats the later "3"
    assert lookup_draft([1, 2, 3], n_draft=4) == []  # nothing repeats
    assert lookup_draft([1, 2, 1], n_draft=0) == []
    assert lookup_draft([7, 7], n_draft=5) == [7]  # the suffix itself is never its own match
    assert lookup_draft([1, 2, 1, 2], n_draft=5, min_ngram=3) == []


@pytest.mark.parametrize("n_draft", [1, 4, 8])
@pytest.mark.parametrize("context", [[3, 4, 5, 6, 7, 8, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0], [2, 9]])
def test_speculative_output_equals_one_token_at_a_time(context, n_draft):
    out, kv, stats = run(context, 60, n_draft=n_draft)
    assert out == plain_greedy(context, 60)
    # the cache holds the context, then the output: every token but the last yielded is evaluated, and only
    # drafts of the batch in flight when the caller stopped can follow
    extra = kv.tokens[len(context):]
    assert kv.tokens[:len(context)] == context and extra[:len(out)] == out[:len(extra)]
    assert len(out) - 1 <= len(extra) <= len(out) - 1 + n_draft
    assert stats.accepted <= stats.drafted and stats.steps == len(kv.decodes)
    assert len(out) - 1 <= stats.steps + stats.accepted  # each step emits one token plus what it kept


def test_drafts_save_decode_steps_on_repetitive_output():
    context = [3, 4, 5, 6, 7, 8, 3, 4]
    out, kv, stats = run(context, 60, n_draft=8)
    assert stats.accepted > 10 and stats.steps < 50
    _, _, no_draft = run(context, 60, n_draft=0)
    assert no_draft.drafted == 0 and no_draft.steps == 59


def test_banned_tokens_are_never_picked():
    context = [3, 4, 5, 6, 7, 8, 3, 4]
    banned = [5, 9]
    out, _, _ = run(context, 40, n_draft=6, banned=banned)
    assert out == plain_greedy(context, 40, banned) and not set(out) & set(banned)


def test_capacity_bounds_the_evaluated_tokens():
    context = [3, 4, 5, 6, 7, 8, 3, 4]
    out, kv, _ = run(context, 100, n_draft=8, capacity=20)
    assert len(kv.tokens) - len(context) <= 20 and len(out) <= 21
    assert out == plain_greedy(context, len(out))


@pytest.mark.slow
def test_llamacpp_lookup_drafts_keep_the_greedy_text_and_the_prefix_cache(no_default_adapter):
    """On the bundled GGUF: drafting writes the same text as one-token-at-a-time greedy decoding on prompts
    that invite copying, and the next call still reuses the cached prefix."""
    from llm import factory
    from llm.engines import GenParams, GenStats
    from llm.settings import LLMSettings

    engine = factory.load_chat_model(LLMSettings(llm_max_new_tokens=48)).engine
    system = ("You are a shopping assistant. Products: Boat Airdopes 141 (₹1,299, 4.1 stars, 24,269 ratings); "
              "Redmi 10A (₹8,499, 4.0 stars, 3,214 ratings).")
    questions = ["Repeat the product list exactly.", "Which product has 24,269 ratings? Quote its line.",
                 "List the prices."]
    for question in questions:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        texts, stats = [], []
        for draft in (0, 8, 0):
            engine.lookup_draft = draft
            st = GenStats()
            texts.append("".join(engine.stream(messages, GenParams(max_new_tokens=48), st)))
            stats.append(st)
        assert texts[1] == texts[0] == texts[2], question
        assert stats[1].completion_tokens == stats[0].completion_tokens
        assert stats[1].cached_prompt_tokens > 20 and stats[2].cached_prompt_tokens > 20
    assert stats[1].draft_tokens > 0
