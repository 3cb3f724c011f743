"""Build a retrieval query set from a catalog, automatically (no hand-picked products).

Query kinds (each has one target product; ``also_ok`` lists products counted as hits by the *lenient*
metric only):

identification (the Recall@5 / MRR goal applies to these)
    ``name``        the head of the product name (before the first comma/parenthesis/"with"/"for"), with a
                    word dropped, synonyms swapped in and a conversational template.
    ``attributes``  brand + product type (the humanised leaf category) + the 2-3 most distinctive words of
                    the name (highest IDF among catalog names), shuffled, in a template.
    ``typo``        a ``name`` query with a typo (swap/drop/double/substitute a letter) in one long word.
    ``complaint``   "what do buyers complain about in the <brand> <distinctive words> <type>".
review
    ``review_quote`` a 6-9 word window of one of the product's reviews ("which product do buyers describe
                    as ..."); lenient hits also include every product whose reviews contain the same words.
filter
    ``filter``      product type + random structured filters (price cap from the type's price quantiles,
                    minimum rating / count, category, sort order); ground truth is computed from the data.

Near-duplicates: the real catalog lists the same item several times under different product_ids (colour or
pack-size variants, sometimes with identical names and reviews). The **strict** metric counts only the
target product_id; the **lenient** one also counts products with the same *base name* (the name with its
final parenthesised variant part removed, case/punctuation-insensitive).
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from data.schema import ProductRecord
from tools.retrieval.bm25 import STOP_WORDS, tokenize
from tools.retrieval.documents import humanize_category

IDENTIFICATION_KINDS = ("name", "attributes", "typo", "complaint")
REVIEW_KINDS = ("review_quote",)
ALL_KINDS = IDENTIFICATION_KINDS + REVIEW_KINDS

# general shopping vocabulary, both directions; not tied to any product in any catalog
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cable": ("cord", "wire"), "charger": ("adapter", "charging brick"), "earphones": ("earbuds", "in-ear headphones"),
    "earbuds": ("earphones",), "headphones": ("headset",), "smartwatch": ("smart watch",),
    "television": ("tv",), "tv": ("television",), "mobile": ("phone", "smartphone"), "phone": ("mobile",),
    "fast": ("quick", "rapid"), "charging": ("charge",), "wireless": ("cordless",), "speaker": ("speakers",),
    "laptop": ("notebook",), "mouse": ("mice",), "keyboard": ("keypad",), "bottle": ("flask",),
    "kettle": ("electric kettle",), "heater": ("warmer",), "cover": ("case",), "case": ("cover",),
    "black": ("dark",), "white": ("light",), "pack": ("set",), "compatible": ("works with",),
    "portable": ("travel",), "stand": ("holder",), "holder": ("stand",), "remote": ("remote control",),
    "iron": ("press",), "cleaner": ("cleaning",), "purifier": ("filter",), "fan": ("cooler",),
    "inch": ("in",), "pen": ("pens",), "pens": ("pen",), "watch": ("wristwatch",),
}
NAME_TEMPLATES = ("{x}", "looking for {x}", "do you have the {x}", "{x} price", "show me {x}", "i want to buy {x}")
ATTR_TEMPLATES = ("{brand} {type} {attrs}", "{type} from {brand}, {attrs}", "{brand} {attrs} {type}",
                  "need a {brand} {type} with {attrs}")
COMPLAINT_TEMPLATES = ("what do buyers complain about in the {x}", "any problems reported with the {x}?",
                       "what do reviewers say about the {x}", "is the {x} any good according to buyers")
QUOTE_TEMPLATES = ("which product do buyers describe as {q}", "reviews saying {q}", "{q}")
_HEAD_CUT = re.compile(r"\s*(?:\(|,|\||;|\s-\s|\s–\s|\bwith\b|\bfor\b|\bcompatible\b)", re.I)
_VARIANT = re.compile(r"\s*\([^()]*\)\s*$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-/]*")


@dataclass
class EvalQuery:
    qid: str
    kind: str
    text: str
    target: str
    also_ok: frozenset[str] = field(default_factory=frozenset)
    args: dict[str, Any] = field(default_factory=dict)  # filter queries: SearchProductsArgs fields

    @property
    def group(self) -> str:
        if self.kind in IDENTIFICATION_KINDS:
            return "identification"
        return "review" if self.kind in REVIEW_KINDS else "filter"


def base_name(name: str) -> str:
    """Name without its trailing "(variant, colour)" part, lower-case alphanumerics only."""
    stripped = _VARIANT.sub("", name)
    return re.sub(r"[^a-z0-9]+", " ", (stripped or name).lower()).strip()


def name_head(name: str, max_words: int = 8) -> str:
    """The part of a name before its first comma/parenthesis/"with"/"for" (at least 3 words when possible)."""
    words = name.split()
    match = _HEAD_CUT.search(name)
    head = name[: match.start()] if match else name
    if len(head.split()) < 3:
        head = " ".join(words[:max_words])
    return " ".join(head.split()[:max_words])


def product_type(record: ProductRecord) -> str:
    return humanize_category(record.leaf_category).lower()


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(("swap", "drop", "double", "sub"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiounrst") + word[i + 1:]


def _synonyms(words: list[str], rng: random.Random, p: float = 0.5) -> list[str]:
    out = []
    for w in words:
        alts = SYNONYMS.get(w.lower())
        out.append(rng.choice(alts) if alts and rng.random() < p else w)
    return out


class QueryBuilder:
    """Deterministic (seeded) query generation over a list of products."""

    def __init__(self, products: Sequence[ProductRecord], seed: int = 13) -> None:
        self.products = list(products)
        self.rng = random.Random(seed)
        df: Counter = Counter()
        for p in self.products:
            df.update(set(tokenize(p.name)))
        self.idf = {t: math.log(len(self.products) / c) for t, c in df.items()}
        self.by_base: dict[str, set[str]] = {}
        for p in self.products:
            self.by_base.setdefault(base_name(p.name), set()).add(p.product_id)

    def lenient(self, record: ProductRecord) -> frozenset[str]:
        return frozenset(self.by_base.get(base_name(record.name), set()) - {record.product_id})

    def distinctive(self, record: ProductRecord, n: int, exclude: set[str]) -> list[str]:
        """The ``n`` name words with the highest IDF (brand/type words excluded), in name order."""
        seen: set[str] = set()
        scored = []
        for pos, word in enumerate(_words(record.name)):
            toks = tokenize(word)
            key = toks[0] if toks else ""
            if not key or key in exclude or key in seen or word.lower() in STOP_WORDS:
                continue
            seen.add(key)
            scored.append((self.idf.get(key, 0.0), -pos, word))
        best = sorted(scored, reverse=True)[:n]
        return [w for _, _, w in sorted(best, key=lambda t: -t[1])]

    def _name_words(self, record: ProductRecord) -> list[str]:
        words = _words(name_head(record.name))
        if len(words) >= 4:
            drop = self.rng.randrange(1, len(words))  # keep the first word (usually the brand)
            words = words[:drop] + words[drop + 1:]
        return " ".join(_synonyms(words, self.rng)).lower().split()

    def name_query(self, record: ProductRecord) -> str:
        return self.rng.choice(NAME_TEMPLATES).format(x=" ".join(self._name_words(record)))

    def attributes_query(self, record: ProductRecord) -> str:
        ptype = product_type(record)
        exclude = set(tokenize(record.brand)) | set(tokenize(ptype))
        attrs = self.distinctive(record, self.rng.choice((2, 3)), exclude)
        self.rng.shuffle(attrs)
        return self.rng.choice(ATTR_TEMPLATES).format(
            brand=record.brand, type=ptype, attrs=" ".join(_synonyms(attrs, self.rng))).lower()

    def typo_query(self, record: ProductRecord) -> str:
        words = self._name_words(record)
        brand = record.brand.lower()
        long_ids = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w != brand]
        if long_ids:
            i = self.rng.choice(long_ids)
            words[i] = _typo(words[i], self.rng)
        return self.rng.choice(NAME_TEMPLATES).format(x=" ".join(words))

    def complaint_query(self, record: ProductRecord) -> str:
        ptype = product_type(record)
        exclude = set(tokenize(record.brand)) | set(tokenize(ptype))
        attrs = self.distinctive(record, 2, exclude)
        x = f"{record.brand} {' '.join(attrs)} {ptype}".lower()
        return self.rng.choice(COMPLAINT_TEMPLATES).format(x=x)

    def review_quote_query(self, record: ProductRecord) -> tuple[str, frozenset[str]] | None:
        texts = [r.content for r in record.reviews if len(r.content.split()) >= 12]
        if not texts:
            return None
        words = self.rng.choice(texts).split()
        size = self.rng.randint(6, 9)
        start = self.rng.randrange(0, len(words) - size + 1)
        quote = " ".join(words[start:start + size])
        key = " ".join(quote.lower().split())
        shared = frozenset(p.product_id for p in self.products if p.product_id != record.product_id and any(
            key in " ".join(r.content.lower().split()) for r in p.reviews))
        return self.rng.choice(QUOTE_TEMPLATES).format(q=f'"{quote.lower()}"'), shared

    def build(self, per_kind: int | None = None, kinds: Sequence[str] = ALL_KINDS) -> list[EvalQuery]:
        """Up to ``per_kind`` queries of each kind (all products when None), products sampled per kind."""
        queries: list[EvalQuery] = []
        for kind in kinds:
            sample = list(self.products)
            if per_kind is not None and per_kind < len(sample):
                sample = self.rng.sample(sample, per_kind)
            for record in sample:
                also = self.lenient(record)
                if kind == "review_quote":
                    made = self.review_quote_query(record)
                    if made is None:
                        continue
                    text, shared = made
                    also = also | shared
                else:
                    text = getattr(self, f"{kind}_query")(record)
                queries.append(EvalQuery(f"{kind}-{len(queries)}", kind, text, record.product_id, also))
        return queries

    def filter_queries(self, n: int) -> list[EvalQuery]:
        """``n`` product-type queries with random structured filters (ground truth is recomputed from data)."""
        by_type: dict[str, list[ProductRecord]] = {}
        for p in self.products:
            by_type.setdefault(p.leaf_category, []).append(p)
        types = sorted(t for t, items in by_type.items() if len(items) >= 5)
        out = []
        for i in range(n):
            leaf = self.rng.choice(types)
            items = by_type[leaf]
            prices = sorted(p.discounted_price or p.actual_price for p in items)
            args: dict[str, Any] = {"sort_by": self.rng.choice(("relevance", "rating", "price_low",
                                                                 "price_high", "discount")),
                                    "top_k": self.rng.choice((5, 10))}
            if self.rng.random() < 0.7:
                args["max_price"] = float(prices[self.rng.randrange(len(prices) // 3, len(prices))])
            if self.rng.random() < 0.3:
                args["min_price"] = float(prices[self.rng.randrange(0, len(prices) // 2)])
            if self.rng.random() < 0.5:
                args["min_rating"] = self.rng.choice((3.5, 3.8, 4.0, 4.2, 4.4))
            if self.rng.random() < 0.4:
                args["min_rating_count"] = self.rng.choice((10, 100, 1000, 10000))
            if self.rng.random() < 0.3:
                args["category"] = self.rng.choice((leaf, humanize_category(leaf), items[0].top_category))
            ptype = humanize_category(leaf).lower()
            text = self.rng.choice(("{t}", "best {t}", "cheap {t}", "good {t} to buy")).format(t=ptype)
            out.append(EvalQuery(f"filter-{i}", "filter", text, "", frozenset(),
                                 {"query": text, **args, "_leaf": leaf}))
        return out
