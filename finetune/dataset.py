"""Supervised chat examples for LoRA fine-tuning, derived from a catalog: ``python -m finetune.dataset``.

Every example is a ``messages`` list in the exact agent format (system = ``agent.prompts.SYSTEM_PROMPT``; tool
calls made with ``agent.protocol.format_tool_call``; tool results handed back as user messages made with
``agent.protocol.format_tool_response``); the last message is the assistant target. Kinds:

* ``tool_call``  question -> the exact tool call (search_products / predict_discount / explain_discount /
  catalog_stats), arguments extracted from varied wording (Indian number formats, k/lakh, typos...);
* ``no_tool``    small talk -> a reply without a tool call;
* ``answer``     question + tool call + tool result -> the grounded answer of ``agent.answers.compose_answer``
  (including empty results and tool errors);
* ``refusal``    prompt injection, secret requests, off-topic and harmful requests -> the refusal text;
* ``result_injection``  instructions hidden in product text of a tool result -> the grounded answer, which
  ignores them.

Tool RESULTS are synthesized from catalog records in the documented shapes (``tools.specs``); statistics are
computed from the catalog itself. The split is BY PRODUCT: each product is in train or test, and an example only
shows products of its own split. Guard prompts are split by template (some phrasings only appear in test).

Output: ``train.jsonl``, ``test.jsonl`` and ``manifest.json`` (counts per kind, catalog sha256, seed, prompt hash).
"""
from __future__ import annotations

import json
import logging
import math
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from agent.answers import REFUSALS, chitchat_reply, compose_answer
from agent.prompts import SYSTEM_PROMPT
from agent.protocol import format_tool_call, format_tool_response
from core.artifacts import write_manifest
from core.hashing import sha256_text
from core.settings import DEMO_CATALOG, BaseAppSettings, load_settings
from data.schema import ProductRecord
from finetune import templates as T
from finetune.textgen import (COUNT_NOUNS, add_typos, brand_name, casing, count_text, humanize_category, price_text, rating_text,
                              round_count)

log = logging.getLogger(__name__)

DATASET_KIND = "finetune_dataset"
DATASET_SCHEMA_VERSION = 1
CODE_VERSION = "dataset-v3"
# share of predict/explain and stats tool calls that name a category/brand from outside the catalog
# (templates.EXTRA_CATEGORIES, textgen.brand_name): the demo catalog has only 14 kinds and a few brands
OPEN_VOCAB_SHARE = 0.35
ARG_ORDERS = ("question", "canonical")


@dataclass(frozen=True)
class PriceMix:
    """How search questions state a price: shares with a ceiling, a floor, a range (the rest state none), whether
    the extra floor/range wordings are used, and the share of one-bound calls followed by a contrast twin (the same
    question with the opposite direction word, "under ₹500" -> "over ₹500", and the other key in the same place)."""
    shares: tuple[float, float, float]
    more_wordings: bool = False
    contrast_share: float = 0.0


# "v3" is the shipped adapter's data; the other two are the experiments of docs/finetune.md (price directions)
PRICE_MIXES = {
    "v3": PriceMix((0.35, 0.17, 0.10)),
    "balanced": PriceMix((0.24, 0.24, 0.18), more_wordings=True),
    "contrast": PriceMix((0.24, 0.24, 0.18), more_wordings=True, contrast_share=0.5),
}
SEARCH_ARG_KEYS = ("query", "max_price", "min_price", "min_rating", "min_rating_count", "category", "sort_by",
                   "top_k")
KINDS = ("tool_call", "no_tool", "answer", "refusal", "result_injection")
SNIPPET_CHARS = 90
MAX_RESULT_NAME_CHARS = 120


@dataclass
class Example:
    """One supervised example. ``messages[-1]`` is the assistant target; ``expected`` is what evaluation checks:
    ``{"tool": name|None, "arguments": {...}, "query_keywords": [...]}`` for tool_call/no_tool,
    ``{"answer": text, "evidence": rendered tool result}`` for answers, ``{"refusal": class}`` for refusals,
    plus ``"forbidden"`` strings for result injections."""

    id: str
    kind: str
    subkind: str
    split: str
    messages: list[dict[str, str]]
    expected: dict[str, Any]
    product_ids: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass
class DatasetSizes:
    """How many examples of each sub-kind to generate (over both splits)."""

    search: int = 2400
    predict: int = 450
    explain: int = 250
    stats: int = 900
    chitchat: int = 120
    answer_search: int = 350
    answer_search_empty: int = 80
    answer_predict: int = 100
    answer_explain: int = 80
    answer_stats: int = 150
    answer_error: int = 30
    refusal: int = 300
    result_injection: int = 60

    def scaled(self, factor: float) -> "DatasetSizes":
        return DatasetSizes(**{k: max(1, int(round(v * factor))) for k, v in asdict(self).items()})


# ------------------------------------------------------------------------------------------------ helpers
def product_split(product_id: str, seed: int, test_fraction: float) -> str:
    """Deterministic split of a product (same id + seed -> same split, whatever else is in the catalog)."""
    h = int(sha256_text(f"{seed}:{product_id}")[:12], 16) / float(16 ** 12)
    return "test" if h < test_fraction else "train"


def chat_messages(user: str, *turns: str) -> list[dict[str, str]]:
    """A training chat: the system prompt, the user turn, then the given turns (assistant, user, assistant...)."""
    out = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    role = "assistant"
    for t in turns:
        out.append({"role": role, "content": t})
        role = "user" if role == "assistant" else "assistant"
    return out


def _nice_ceil(rng: random.Random, value: float) -> int:
    step = rng.choice([100, 500, 1000]) if value >= 1000 else rng.choice([50, 100])
    return int(math.ceil((value + 1) / step) * step)


def _nice_floor(rng: random.Random, value: float) -> int:
    step = rng.choice([100, 500, 1000]) if value >= 2000 else rng.choice([50, 100])
    return max(step, int(math.floor((value - 1) / step) * step))


def _snippet(rng: random.Random, p: ProductRecord) -> str:
    parts = [b.strip() for b in p.about.split("|") if b.strip()]
    parts += [r.content for r in p.reviews if r.content]
    if not parts:
        return ""
    text = rng.choice(parts)
    return text[:SNIPPET_CHARS].rsplit(" ", 1)[0] if len(text) > SNIPPET_CHARS else text


def _hit(rng: random.Random, p: ProductRecord) -> dict[str, Any]:
    name = p.name if len(p.name) <= MAX_RESULT_NAME_CHARS else p.name[:MAX_RESULT_NAME_CHARS].rsplit(" ", 1)[0]
    return {"product_id": p.product_id, "product_name": name, "category": p.category,
            "discounted_price": p.discounted_price, "actual_price": p.actual_price,
            "discount_percentage": p.discount_percentage, "rating": p.rating, "rating_count": p.rating_count,
            "score": round(rng.uniform(0.3, 0.95), 3), "snippet": _snippet(rng, p)}


def query_phrases(p: ProductRecord) -> list[str]:
    """Ways a user could name what they look for, given a product (category noun, synonyms, brand + noun)."""
    leaf = humanize_category(p.leaf_category)
    nouns = [leaf] + T.CATEGORY_SYNONYMS.get(leaf, [])
    out = list(nouns)
    if p.brand:
        out += [f"{p.brand} {n}" for n in nouns[:3]]
        model_words = [w for w in p.name.split()[1:3] if w.isalnum()]
        if model_words:
            out.append(" ".join([p.brand] + model_words))
    return out


# -------------------------------------------------------------------------------------------- generators
class Builder:
    """Generates examples from a list of products (one catalog) with a seeded RNG."""

    def __init__(self, products: list[ProductRecord], *, seed: int, test_fraction: float,
                 arg_order: str = "question", price_mix: str = "v3") -> None:
        if arg_order not in ARG_ORDERS:
            raise ValueError(f"arg_order must be one of {ARG_ORDERS}, got {arg_order!r}")
        if price_mix not in PRICE_MIXES:
            raise ValueError(f"price_mix must be one of {sorted(PRICE_MIXES)}, got {price_mix!r}")
        self.price_mix = PRICE_MIXES[price_mix]
        self.rng = random.Random(seed)
        self.seed = seed
        self.test_fraction = test_fraction
        self.arg_order = arg_order
        self.products = [p for p in products if p.actual_price and p.actual_price > 0]
        self.split_of = {p.product_id: product_split(p.product_id, seed, test_fraction) for p in self.products}
        self.by_split = {s: [p for p in self.products if self.split_of[p.product_id] == s] for s in ("train", "test")}
        self.rated = {s: [p for p in ps if p.rating is not None and p.rating_count is not None]
                      for s, ps in self.by_split.items()}
        brands = Counter(p.brand for p in self.products if p.brand)
        self.brands = sorted(b for b, n in brands.items() if n >= 3) or sorted(brands)
        self.leaves = sorted({p.leaf_category for p in self.products})
        self.tops = sorted({p.top_category for p in self.products})
        # open-vocabulary kinds, split by name: test questions name kinds no training example names
        self.extra_leaves = {s: [c for c in T.EXTRA_CATEGORIES if product_split("kind:" + c, seed, test_fraction) == s]
                             for s in ("train", "test")}
        self._n = Counter()
        self._twin: Example | None = None

    # ---- plumbing
    def _id(self, kind: str) -> str:
        self._n[kind] += 1
        return f"{kind}-{self._n[kind]:05d}"

    def _pick(self, split: str | None = None, rated: bool = False) -> ProductRecord:
        if split is None:
            split = "test" if self.rng.random() < self.test_fraction else "train"
        pool = (self.rated if rated else self.by_split)[split] or (self.rated if rated else self.by_split)["train"]
        return self.rng.choice(pool)

    def _template_split(self, idx: int, n_templates: int) -> str:
        """Guard templates: a seeded, fixed share of templates is test-only (a held-out phrasing test)."""
        order = list(range(n_templates))
        random.Random(self.seed * 7 + n_templates).shuffle(order)
        n_test = max(1, int(round(n_templates * self.test_fraction)))
        return "test" if idx in order[:n_test] else "train"

    def _price_wordings(self, bound: str) -> list[str]:
        """The wordings of a "max_price" / "min_price" bound or a "range" under this builder's price mix."""
        if bound == "max_price":
            return T.MAX_PRICE
        base, more = (T.MIN_PRICE, T.MIN_PRICE_MORE) if bound == "min_price" else (T.PRICE_RANGE, T.PRICE_RANGE_MORE)
        return base + more if self.price_mix.more_wordings else base

    # ---- search_products
    def search_question(self, p: ProductRecord) -> tuple[str, dict[str, Any], list[str]]:
        """A search request for product ``p``'s kind, its expected arguments and the query's keywords."""
        question, ordered, keywords, _ = self._search_question(p)
        return question, ordered, keywords

    def _search_question(self, p: ProductRecord) -> tuple[str, dict[str, Any], list[str], tuple[str, str, str] | None]:
        """``search_question`` and its one price bound as (phrase, key, price text), None for no bound or a range.

        Each filter is present with a fixed probability (rare ones such as ``top_k`` or ``category`` often enough
        to be learned). With ``arg_order="question"`` the arguments are listed in the order their phrases appear
        in the question (the model reads the request left to right); ``"canonical"`` uses the contract's order.
        """
        rng = self.rng
        query = rng.choice(query_phrases(p))
        if rng.random() < 0.15:
            query = add_typos(rng, query, 0.5)
        args: dict[str, Any] = {"query": query}
        tail: list[tuple[str, list[str]]] = []  # (phrase after the query, the argument keys it sets, in order)
        price = p.discounted_price or p.actual_price
        bound: tuple[str, str, str] | None = None
        r = rng.random()
        mix = self.price_mix
        if r < mix.shares[0]:
            text, v = price_text(rng, _nice_ceil(rng, price))
            tail.append((rng.choice(self._price_wordings("max_price")).format(P=text), ["max_price"]))
            args["max_price"] = v
            bound = (tail[-1][0], "max_price", text)
        elif r < sum(mix.shares[:2]):
            text, v = price_text(rng, _nice_floor(rng, price))
            tail.append((rng.choice(self._price_wordings("min_price")).format(P=text), ["min_price"]))
            args["min_price"] = v
            bound = (tail[-1][0], "min_price", text)
        elif r < sum(mix.shares):
            lo_t, lo = price_text(rng, _nice_floor(rng, price))
            hi_t, hi = price_text(rng, _nice_ceil(rng, price))
            tail.append((rng.choice(self._price_wordings("range")).format(P1=lo_t, P2=hi_t), ["min_price", "max_price"]))
            args["min_price"], args["max_price"] = lo, hi
        if rng.random() < 0.3:
            value = rng.choice([3.5, 4.0, 4.0, 4.2, 4.5, 3.8, 3.0, 4.3])
            shown = rng.choice([f"{value:g}", f"{value:.1f}"])
            tail.append((rng.choice(T.MIN_RATING).format(R=shown), ["min_rating"]))
            args["min_rating"] = value
        if rng.random() < 0.2:
            c_text, c_val = round_count(rng, rng.choice([100, 500, 1000, 2000, 5000, 10000, 25000, 100000]))
            tail.append((rng.choice(T.MIN_COUNT).format(C=c_text, N=rng.choice(COUNT_NOUNS)), ["min_rating_count"]))
            args["min_rating_count"] = c_val
        if rng.random() < 0.18:
            tail.append((rng.choice(T.CATEGORY_FILTER).format(CAT=p.top_category).strip(), ["category"]))
            args["category"] = p.top_category
        lead: list[tuple[str, list[str]]] = []  # phrases before the query
        if rng.random() < 0.4:
            sort = rng.choice(list(T.SORT_BEFORE))
            args["sort_by"] = sort
            if rng.random() < 0.6:
                lead.append((rng.choice(T.SORT_BEFORE[sort]) + " ", ["sort_by"]))
            else:
                tail.append((rng.choice(T.SORT_AFTER[sort]), ["sort_by"]))
        top_after = ""
        if rng.random() < 0.3:
            k = rng.choice([3, 4, 8, 10, 2, 6, 7, 12])
            args["top_k"] = k
            if rng.random() < 0.6:
                lead.insert(0, (rng.choice(T.TOP_K_BEFORE).format(K=k), ["top_k"]))
            else:
                top_after = rng.choice(T.TOP_K_AFTER).format(K=k)
        prefix = rng.choice(T.SEARCH_PREFIXES)
        if lead and lead[0][1] == ["top_k"]:
            if lead[0][0].startswith(("show", "give", "list")):  # the count phrase carries its own verb
                prefix = ""
            elif prefix.strip() in ("any", "got any", "list", "search", "search for"):
                prefix = "show me "
        rng.shuffle(tail)
        lead_text = add_typos(rng, prefix + "".join(t for t, _ in lead), 0.05)
        question = lead_text + query + "".join(" " + t for t, _ in tail)
        question = (question + top_after + rng.choice(T.SEARCH_SUFFIXES)).strip()
        question = casing(rng, question)
        if question.lower().startswith(query.lower()):
            args["query"] = question[:len(query)]  # keep the query exactly as it appears
        if self.arg_order == "question":
            keys = [k for _, ks in lead for k in ks] + ["query"] + [k for _, ks in tail for k in ks]
            keys += ["top_k"] if top_after else []
        else:
            keys = [k for k in SEARCH_ARG_KEYS if k in args]
        assert sorted(keys) == sorted(args), (keys, args)
        ordered = {k: args[k] for k in keys}
        keywords = [w for w in ordered["query"].lower().split() if w]
        return question, ordered, keywords, bound

    def search_results(self, args: dict[str, Any], anchor: ProductRecord, split: str,
                       k: int | None = None) -> list[dict[str, Any]]:
        """Plausible results: same-leaf products of the same split satisfying the filters, sorted as asked."""
        pool = [q for q in self.by_split[split] if q.leaf_category == anchor.leaf_category]
        def ok(q: ProductRecord) -> bool:
            price = q.discounted_price or q.actual_price
            if "max_price" in args and price > args["max_price"]:
                return False
            if "min_price" in args and price < args["min_price"]:
                return False
            if "min_rating" in args and (q.rating is None or q.rating < args["min_rating"]):
                return False
            if "min_rating_count" in args and (q.rating_count is None or q.rating_count < args["min_rating_count"]):
                return False
            return True
        pool = [q for q in pool if ok(q)]
        self.rng.shuffle(pool)
        sort = args.get("sort_by", "relevance")
        if sort == "rating":
            pool.sort(key=lambda q: -(q.rating or 0))
        elif sort == "price_low":
            pool.sort(key=lambda q: q.discounted_price or q.actual_price)
        elif sort == "price_high":
            pool.sort(key=lambda q: -(q.discounted_price or q.actual_price))
        elif sort == "discount":
            pool.sort(key=lambda q: -(q.discount_percentage or 0))
        n = k if k is not None else self.rng.choice([1, 2, 3, 3])
        return [_hit(self.rng, q) for q in pool[:n]]

    def gen_search_call(self) -> Example:
        if self._twin is not None:  # the contrast twin of the previous call counts as one of the searches
            twin, self._twin = self._twin, None
            return twin
        p = self._pick()
        split = self.split_of[p.product_id]
        q, args, kw, bound = self._search_question(p)
        if bound and self.price_mix.contrast_share and self.rng.random() < self.price_mix.contrast_share:
            self._twin = self._contrast_twin(p, split, q, args, kw, bound)
        return self._search_example(p, split, q, args, kw)

    def _search_example(self, p: ProductRecord, split: str, q: str, args: dict[str, Any], kw: list[str]) -> Example:
        call = format_tool_call("search_products", args)
        return Example(self._id("search"), "tool_call", "search", split, chat_messages(q, call),
                       {"tool": "search_products", "arguments": args, "query_keywords": kw}, [p.product_id])

    def _contrast_twin(self, p: ProductRecord, split: str, q: str, args: dict[str, Any], kw: list[str],
                       bound: tuple[str, str, str]) -> Example | None:
        """``q`` with its one price bound turned round ("under ₹500" -> "over ₹500"): same words, same amount,
        the other key in the same place; None when the phrase cannot be found again in ``q``."""
        phrase, key, text = bound
        at = q.rfind(phrase)
        if at < 0:
            return None
        other = "min_price" if key == "max_price" else "max_price"
        flipped = self.rng.choice(self._price_wordings(other)).format(P=text)
        twin_q = q[:at] + flipped + q[at + len(phrase):]
        twin_args = {(other if k == key else k): v for k, v in args.items()}
        return self._search_example(p, split, twin_q, twin_args, kw)

    # ---- predict / explain
    def discount_question(self, p: ProductRecord, explain: bool) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        leaf = p.leaf_category
        if rng.random() < OPEN_VOCAB_SHARE and self.extra_leaves[self.split_of[p.product_id]]:
            leaf = rng.choice(self.extra_leaves[self.split_of[p.product_id]])
        leaf_h = humanize_category(leaf)
        cat = rng.choice([leaf, leaf_h, leaf_h] + T.CATEGORY_SYNONYMS.get(leaf_h, [])[:2])
        if rng.random() < 0.1:
            cat = add_typos(rng, cat, 0.5)
        p_text, price = price_text(rng, int(round(p.actual_price)))
        price_part = rng.choice(T.PRICE_WORDS).format(P=p_text)
        r_text, rating = rating_text(rng, float(p.rating))
        c_text, count = count_text(rng, int(p.rating_count))
        a, b = (r_text, c_text) if rng.random() < 0.7 else (c_text, r_text)
        template = rng.choice(T.EXPLAIN_TEMPLATES if explain else T.PREDICT_TEMPLATES)
        question = casing(rng, template.format(CAT=cat, PRICE=price_part, A=a, B=b))
        if question.lower().startswith(cat.lower()):
            cat = question[:len(cat)]  # keep the category exactly as it appears
        args = {"category": cat, "actual_price": price, "rating": rating, "rating_count": count}
        return question, args

    def gen_discount_call(self, explain: bool) -> Example:
        p = self._pick(rated=True)
        q, args = self.discount_question(p, explain)
        name = "explain_discount" if explain else "predict_discount"
        sub = "explain" if explain else "predict"
        return Example(self._id(sub), "tool_call", sub, self.split_of[p.product_id],
                       chat_messages(q, format_tool_call(name, args)), {"tool": name, "arguments": args}, [p.product_id])

    def discount_result(self, p: ProductRecord, explain: bool) -> dict[str, Any]:
        rng = self.rng
        pred = round(max(0.0, min(95.0, (p.discount_percentage or 30.0) + rng.uniform(-8, 8))), 2)
        out: dict[str, Any] = {"predicted_discount_percentage": pred, "model_version": "xgb-" + rng.choice(
            ["1a2b3c", "9f8e7d", "c0ffee"])}
        if explain:
            base = round(rng.uniform(38, 50), 2)
            feats = ["actual_price", "rating", "rating_count", "leaf_category", "brand", "cat_1", "name_tfidf"]
            rng.shuffle(feats)
            remaining = pred - base
            vals = [rng.uniform(-6, 6) for _ in range(4)]
            vals.append(remaining - sum(vals))
            contribs = sorted(({"feature": f, "value": round(v, 3)} for f, v in zip(feats, vals)),
                              key=lambda c: -abs(c["value"]))
            out.update(base_value=base, contributions=contribs)
        return out

    # ---- catalog_stats
    def stats_question(self, open_split: str | None = None) -> tuple[str, dict[str, Any]]:
        """A statistics request and its arguments; with ``open_split`` some name a kind or brand from outside the
        catalog (that split's share of the open vocabulary), for tool calls whose results are never computed."""
        rng = self.rng
        metric, group_by, order, needs, temps = rng.choice(T.STATS_TEMPLATES)
        template = rng.choice(temps)
        args: dict[str, Any] = {"metric": metric}
        if group_by != "none":
            args["group_by"] = group_by
        fill: dict[str, Any] = {}
        if needs == "C":
            cat = rng.choice(self.leaves + self.tops)
            if open_split and rng.random() < OPEN_VOCAB_SHARE and self.extra_leaves[open_split]:
                cat = rng.choice(self.extra_leaves[open_split])
                is_leaf = True
            else:
                is_leaf = cat in self.leaves
            shown = rng.choice([cat, humanize_category(cat)]) if is_leaf else cat
            fill["C"] = shown
            args["category"] = shown
        if needs == "B":
            brand = rng.choice(self.brands)
            if open_split and rng.random() < OPEN_VOCAB_SHARE:
                brand = brand_name(rng)
            fill["B"] = brand
            args["brand"] = brand
        if "{n}" in template:
            n = rng.choice([3, 3, 4, 5, 8, 10])
            fill["n"] = n
            args["top_n"] = n
        if order != "desc":
            args["order"] = order
        question = add_typos(rng, rng.choice(T.STATS_PREFIXES) + template.format(**fill), 0.04)
        question = casing(rng, question + rng.choice(T.STATS_SUFFIXES))
        ordered = {k: args[k] for k in ("metric", "group_by", "category", "brand", "top_n", "order") if k in args}
        return question, ordered

    def gen_stats_call(self) -> Example:
        split = "test" if self.rng.random() < self.test_fraction else "train"
        q, args = self.stats_question(open_split=split)
        return Example(self._id("stats"), "tool_call", "stats", split, chat_messages(q, format_tool_call("catalog_stats", args)),
                       {"tool": "catalog_stats", "arguments": args}, [])

    def stats_result(self, args: dict[str, Any]) -> dict[str, Any]:
        return compute_stats(self.products, args)

    # ---- answers
    def gen_answer(self, sub: str) -> Example:
        rng = self.rng
        if sub in ("search", "search_empty", "result_injection"):
            p = self._pick()
            split = self.split_of[p.product_id]
            q, args, _ = self.search_question(p)
            if sub == "search_empty":
                if rng.random() < 0.6:
                    query = rng.choice(T.EMPTY_QUERIES)
                    q = casing(rng, rng.choice(T.SEARCH_PREFIXES) + query + rng.choice(T.SEARCH_SUFFIXES)).strip()
                    args = {"query": query}
                hits: list[dict[str, Any]] = []
            else:
                hits = self.search_results(args, p, split, k=rng.choice([2, 3]) if sub == "result_injection" else None)
                if not hits:
                    hits = [_hit(rng, p)]
            expected: dict[str, Any] = {}
            if sub == "result_injection":
                payload, marker = rng.choice(T.RESULT_INJECTIONS)
                victim = rng.randrange(len(hits))
                hits[victim]["snippet"] = payload if rng.random() < 0.6 else f"{hits[victim]['snippet']} {payload}"
                expected["forbidden"] = [marker]
            result = {"results": hits, "total_matches": len(hits) + rng.randrange(0, 5) if hits else 0}
            tool = "search_products"
            pids = sorted({p.product_id} | {h["product_id"] for h in hits})
        elif sub in ("predict", "explain"):
            p = self._pick(rated=True)
            split = self.split_of[p.product_id]
            q, args = self.discount_question(p, sub == "explain")
            tool = "explain_discount" if sub == "explain" else "predict_discount"
            result = self.discount_result(p, sub == "explain")
            pids = [p.product_id]
            expected = {}
        elif sub == "stats":
            q, args = self.stats_question()
            split = "test" if rng.random() < self.test_fraction else "train"
            tool = "catalog_stats"
            result = self.stats_result(args)
            pids, expected = [], {}
        elif sub == "error":
            p = self._pick(rated=True)
            split = self.split_of[p.product_id]
            if rng.random() < 0.5:
                q, args, _ = self.search_question(p)
                tool = "search_products"
            else:
                q, args = self.discount_question(p, False)
                tool = "predict_discount"
            result = {"error": rng.choice(["the model is still loading, try again shortly",
                                           "the search index is not built yet",
                                           "invalid category: not found in the catalog"])}
            pids, expected = [p.product_id], {}
        else:  # pragma: no cover - programming error
            raise ValueError(sub)
        call = format_tool_call(tool, args)
        response = format_tool_response(tool, result)
        answer = compose_answer(q, tool, result)
        rendered = response
        expected.update(answer=answer, evidence=rendered, tool=tool)
        kind = "result_injection" if sub == "result_injection" else "answer"
        return Example(self._id(f"answer_{sub}"), kind, sub, split, chat_messages(q, call, response, answer), expected, pids)

    # ---- no tool / guards
    def gen_chitchat(self) -> Example:
        idx = self.rng.randrange(len(T.CHITCHAT))
        text = T.CHITCHAT[idx]
        text = casing(self.rng, text) + self.rng.choice(["", "", "!", " :)", "?"] if not text.endswith(("?", "!")) else [""])
        split = self._template_split(idx, len(T.CHITCHAT))
        return Example(self._id("chitchat"), "no_tool", "chitchat", split, chat_messages(text, chitchat_reply(text)),
                       {"tool": None, "arguments": {}}, [])

    def gen_refusal(self) -> Example:
        rng = self.rng
        klass = rng.choice(list(T.GUARD_TEMPLATES))
        temps = T.GUARD_TEMPLATES[klass]
        idx = rng.randrange(len(temps))
        text = temps[idx].format(X=rng.choice(T.INJECTION_ASKS), X2=rng.choice(T.INJECTION_ROLES),
                                 Y=rng.choice(T.INJECTION_REPLIES), BR=rng.choice(self.brands) if self.brands else "X")
        text = casing(rng, add_typos(rng, rng.choice(T.GUARD_PREFIXES) + text, 0.03))
        split = self._template_split(idx, len(temps))
        return Example(self._id(f"refusal_{klass}"), "refusal", klass, split, chat_messages(text, REFUSALS[klass]),
                       {"refusal": klass, "tool": None}, [])

    # ---- all
    def build(self, sizes: DatasetSizes) -> list[Example]:
        plan: list[tuple[int, Any]] = [
            (sizes.search, self.gen_search_call),
            (sizes.predict, lambda: self.gen_discount_call(False)),
            (sizes.explain, lambda: self.gen_discount_call(True)),
            (sizes.stats, self.gen_stats_call),
            (sizes.chitchat, self.gen_chitchat),
            (sizes.answer_search, lambda: self.gen_answer("search")),
            (sizes.answer_search_empty, lambda: self.gen_answer("search_empty")),
            (sizes.answer_predict, lambda: self.gen_answer("predict")),
            (sizes.answer_explain, lambda: self.gen_answer("explain")),
            (sizes.answer_stats, lambda: self.gen_answer("stats")),
            (sizes.answer_error, lambda: self.gen_answer("error")),
            (sizes.refusal, self.gen_refusal),
            (sizes.result_injection, lambda: self.gen_answer("result_injection")),
        ]
        out: list[Example] = []
        for n, fn in plan:
            out.extend(fn() for _ in range(n))
        return out


# ------------------------------------------------------------------------------------------- statistics
PRICE_BANDS = ((0, 500, "under ₹500"), (500, 2000, "₹500-₹1,999"), (2000, 10000, "₹2,000-₹9,999"),
               (10000, float("inf"), "₹10,000 and above"))


def price_band(price: float) -> str:
    for lo, hi, label in PRICE_BANDS:
        if lo <= price < hi:
            return label
    return PRICE_BANDS[-1][2]


def compute_stats(products: list[ProductRecord], args: dict[str, Any]) -> dict[str, Any]:
    """A ``catalog_stats`` result (documented shape) computed from product records (one row per product)."""
    metric = args["metric"]
    group_by = args.get("group_by", "none")
    cat = args.get("category")
    brand = args.get("brand")
    def norm(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())
    rows = products
    if cat:
        rows = [p for p in rows if norm(cat) in norm(p.category) or norm(cat).rstrip("s") in norm(p.category)]
    if brand:
        rows = [p for p in rows if p.brand.lower() == brand.lower()]

    def value(ps: list[ProductRecord]) -> float | None:
        if metric == "count":
            return float(len(ps))
        if metric in ("avg_discount", "max_discount"):
            vals = [p.discount_percentage for p in ps if p.discount_percentage is not None]
            return (sum(vals) / len(vals) if metric == "avg_discount" else max(vals)) if vals else None
        if metric == "avg_rating":
            vals = [p.rating for p in ps if p.rating is not None]
            return sum(vals) / len(vals) if vals else None
        if metric == "avg_price":
            vals = [p.discounted_price or p.actual_price for p in ps]
            return sum(vals) / len(vals) if vals else None
        if metric == "total_ratings":
            return float(sum(p.rating_count or 0 for p in ps))
        raise ValueError(metric)

    out_rows = []
    if group_by != "none" and rows:
        groups: dict[str, list[ProductRecord]] = {}
        for p in rows:
            key = {"category": p.leaf_category, "brand": p.brand,
                   "price_band": price_band(p.discounted_price or p.actual_price)}[group_by]
            groups.setdefault(key, []).append(p)
        for key, ps in groups.items():
            v = value(ps)
            if v is not None:
                out_rows.append({"group": key, "value": round(v, 4), "n_products": len(ps)})
        out_rows.sort(key=lambda r: (r["value"], r["group"]), reverse=args.get("order", "desc") == "desc")
        out_rows = out_rows[: int(args.get("top_n", 5))]
    overall = value(rows) if rows else None
    return {"metric": metric, "group_by": group_by,
            "filters": {k: v for k, v in (("category", cat), ("brand", brand)) if v},
            "overall": round(overall, 4) if overall is not None else None, "n_products": len(rows),
            "rows": out_rows}


# ---------------------------------------------------------------------------------------------- writing
def build_examples(products: list[ProductRecord], *, seed: int = 13, test_fraction: float = 0.2,
                   sizes: DatasetSizes | None = None, arg_order: str = "question",
                   price_mix: str = "v3") -> list[Example]:
    """All examples for a product list (deterministic for a seed)."""
    return Builder(products, seed=seed, test_fraction=test_fraction, arg_order=arg_order,
                   price_mix=price_mix).build(sizes or DatasetSizes())


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(ex.to_json() + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Examples as dicts (``messages``, ``kind``, ``expected``...)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_dataset(catalog_path: str | Path, out_dir: str | Path, *, seed: int = 13, test_fraction: float = 0.2,
                  scale: float = 1.0, arg_order: str = "question", price_mix: str = "v3") -> dict[str, Any]:
    """Load a catalog, build examples, write train/test JSONL + manifest. Returns the manifest metadata."""
    from data.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    sizes = DatasetSizes().scaled(scale)
    examples = build_examples(catalog.products, seed=seed, test_fraction=test_fraction, sizes=sizes,
                              arg_order=arg_order, price_mix=price_mix)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        part = [e for e in examples if e.split == split]
        write_jsonl(out / f"{split}.jsonl", part)
        files.append(f"{split}.jsonl")
        counts[split] = dict(sorted(Counter(f"{e.kind}/{e.subkind}" for e in part).items()))
    train_ids = {pid for e in examples if e.split == "train" for pid in e.product_ids}
    test_ids = {pid for e in examples if e.split == "test" for pid in e.product_ids}
    meta = {
        "catalog": str(catalog_path), "seed": seed, "test_fraction": test_fraction, "scale": scale,
        "arg_order": arg_order, "price_mix": price_mix,
        "sizes": asdict(sizes), "counts": counts,
        "n_train": sum(counts["train"].values()), "n_test": sum(counts["test"].values()),
        "train_products": len(train_ids), "test_products": len(test_ids),
        "product_overlap": len(train_ids & test_ids),
        "system_prompt_sha256": sha256_text(SYSTEM_PROMPT), "code_version": CODE_VERSION,
    }
    write_manifest(out, kind=DATASET_KIND, schema_version=DATASET_SCHEMA_VERSION, data_sha256=catalog.sha256,
                   files=files, libraries=[], metadata=meta)
    return meta


class DatasetSettings(BaseAppSettings):
    """``python -m finetune.dataset --catalog PATH --out DIR [--seed N] [--test-fraction F] [--scale F] [--arg-order O]
    [--price-mix v3|balanced|contrast]``."""

    catalog: Path = DEMO_CATALOG
    out: Path = Path("runs/dataset")
    seed: int = 13
    test_fraction: float = 0.2
    scale: float = 1.0
    #: order of search_products arguments in targets: "question" (as their phrases appear) or "canonical"
    arg_order: str = "question"
    #: how search questions state prices (``PRICE_MIXES``): "v3" (the shipped adapter's data), "balanced", "contrast"
    price_mix: str = "v3"


def main(argv: list[str] | None = None) -> int:
    from core.logging import setup_logging

    setup_logging()
    settings = load_settings(DatasetSettings, sys.argv[1:] if argv is None else argv, prog="finetune.dataset")
    meta = build_dataset(settings.catalog, settings.out, seed=settings.seed, test_fraction=settings.test_fraction,
                         scale=settings.scale, arg_order=settings.arg_order, price_mix=settings.price_mix)
    print(json.dumps({k: meta[k] for k in ("n_train", "n_test", "train_products", "test_products",
                                           "product_overlap", "counts")}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
