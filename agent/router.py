"""Deterministic understanding of a question, used when the model gives no usable tool call, and to resolve
follow-ups and spot products that are not in the catalog.

* :class:`CatalogVocabulary` - categories, brands and words of the loaded catalog.
* :func:`route` - question -> tool call (``search_products`` with filters, ``predict_discount`` /
  ``explain_discount`` with numbers read from the wording, ``catalog_stats``).
* :func:`resolve_followup` - "and what about its reviews?" -> the question about the last discussed product.
* :func:`unknown_product_terms` - brand/model-like words of the question that appear nowhere in the catalog.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from agent.protocol import UNIT_SCALE, ToolCall
from agent.stated import (AMBIGUOUS_BOUND_WORDS, ASCENDING_WORDS, price_bounds, product_phrase, stated_category,
                          stated_counts, stated_group, stated_kind, stated_ratings, stated_sort, stated_top_k, worded)
from data.names import CategoryFilter, NameIndex, name_key, singular

_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'+-]*|\d+[A-Za-z]+[A-Za-z0-9]*")
_NUM = r"(\d{1,3}(?:,\d{2,3})+|\d+)(?:\.(\d+))?"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def camel_words(text: str) -> list[str]:
    """'USBCables' -> ['usb', 'cables']; 'Pens,Pencils&WritingSupplies' -> ['pens', 'pencils', 'writing', ...]."""
    return [w.lower() for w in _CAMEL_RE.findall(text)]


@dataclass
class CatalogVocabulary:
    """What the catalog contains, for matching question words (all lower-case)."""

    categories: list[str] = field(default_factory=list)           # leaf categories as written
    brands: dict[str, str] = field(default_factory=dict)           # lower -> as written
    words: set[str] = field(default_factory=set)
    category_names: NameIndex = field(default_factory=NameIndex)  # every level of every category path
    brand_names: NameIndex = field(default_factory=NameIndex)
    category_paths: list[tuple[str, list[str]]] = field(default_factory=list, repr=False)  # (path, level keys)
    level_words: frozenset[str] = field(default_factory=frozenset, repr=False)  # camel_words of every level
    _category_patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list, repr=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | None) -> "CatalogVocabulary":
        if frame is None or frame.empty:
            return cls()
        products = frame.drop_duplicates("product_id")
        categories = sorted(set(products["leaf_category"].dropna().astype(str)))
        brands = {b.lower(): b for b in products["brand"].dropna().astype(str) if b}
        words: set[str] = set()
        for column in ("product_name", "about_product"):
            for text in products[column].dropna().astype(str):
                words.update(w.lower().strip("'+-") for w in _WORD_RE.findall(text))
        for path in products["category"].dropna().astype(str):
            for part in path.split("|"):
                words.update(camel_words(part))
                words.add(part.lower())
        words.update(brands)
        paths = sorted(set(products["category"].dropna().astype(str)))
        vocab = cls(categories=categories, brands=brands, words={w for w in words if w},
                    category_names=NameIndex.of(level for path in paths for level in path.split("|")),
                    brand_names=NameIndex.of(brands.values()),
                    category_paths=[(path, [name_key(level) for level in path.split("|")]) for path in paths],
                    level_words=frozenset(w for path in paths for level in path.split("|") for w in camel_words(level)))
        patterns = sorted(((vocab._category_regex(c), c) for c in categories), key=lambda t: -len(t[1]))
        # the head noun alone ('kettles' -> ElectricKettles) when it names exactly one category
        heads: dict[str, list[str]] = {}
        for c in categories:
            words = camel_words(c)
            if len(words) > 1 and len(words[-1]) >= 4:
                heads.setdefault(singular(words[-1]), []).append(c)
        patterns += [(re.compile(rf"\b{re.escape(h)}\w*", re.I), cs[0]) for h, cs in heads.items() if len(cs) == 1]
        vocab._category_patterns = patterns
        return vocab

    @staticmethod
    def _category_regex(category: str) -> re.Pattern[str]:
        words = camel_words(category)
        if not words:
            return re.compile(r"(?!x)x")
        words[-1] = singular(words[-1])
        body = r"[\s\-&,]*".join(re.escape(w) for w in words)
        return re.compile(rf"\b{body}\w*", re.I)

    def match_category(self, text: str) -> str | None:
        """The longest leaf category named in ``text`` ('smart watch' / 'smartwatches' -> 'SmartWatches')."""
        for rx, category in self._category_patterns:
            if rx.search(text):
                return category
        return None

    def has_category(self, text: str) -> bool:
        """Whether the tools' category filter (``data.names.CategoryFilter``) matches any product."""
        wanted = CategoryFilter.of(text)
        return any(wanted.matches(path, keys) for path, keys in self.category_paths)

    def match_brand(self, text: str) -> str | None:
        """The first catalog brand ``text`` names as a word, or None."""
        return next(iter(self.match_brands(text)), None)

    def match_brands(self, text: str) -> list[str]:
        """Every catalog brand ``text`` names as a word, in order, once each."""
        found = [self.brands.get(word.lower()) for word in _WORD_RE.findall(text)]
        return list(dict.fromkeys(b for b in found if b))

    def domain_words(self) -> tuple[str, ...]:
        """Brands and category words (keep questions about them on-topic for the guard); built once."""
        cached = self.__dict__.get("_domain_words")
        if cached is None:
            out = set(self.brands)
            for c in self.categories:
                out.update(w for w in camel_words(c) if len(w) > 3)
            cached = self.__dict__["_domain_words"] = tuple(sorted(out))
        return cached


# ------------------------------------------------------------------------------------------- number reading
_PRICE_RES = [
    re.compile(rf"(?:₹|\brs\.?|\binr)\s*{_NUM}\s*(k\b|lakh|l\b)?", re.I),
    re.compile(rf"\b{_NUM}\s*(k\b|lakh)?\s*(?:rupees|rs\b|inr\b|/-)", re.I),
    re.compile(rf"\b(?:price[sd]?|costs?|costing|mrp|list price|priced)\s*(?:of|at|is|:|=)?\s*(?:₹|rs\.?)?\s*{_NUM}\s*(k\b)?",
               re.I),
]
_COUNT_RE2 = re.compile(rf"\b(?:ratings?|reviews?)\s*(?:count)?\s*(?:of|:|=)?\s*{_NUM}\s*(k|lakh)?\b", re.I)


def _scale(value: float, unit: str | None) -> float:
    return value * UNIT_SCALE.get((unit or "").lower(), 1.0)


def _value(m: re.Match[str], unit_group: int = 3) -> float:
    whole, frac = m.group(1), m.group(2)
    value = _num(whole) + (float("0." + frac) if frac else 0.0)
    unit = m.group(unit_group) if m.lastindex and m.lastindex >= unit_group else None
    return _scale(value, unit)


def read_price(text: str) -> float | None:
    for rx in _PRICE_RES:
        m = rx.search(text)
        if m:
            return _value(m)
    return None


def read_rating(text: str) -> float | None:
    """The first star rating the text states (``agent.stated.stated_ratings``)."""
    ratings = stated_ratings(text)
    return ratings[0].value if ratings else None


def read_rating_count(text: str) -> int | None:
    """The first rating count the text states ("9.3K ratings", "20,850 reviewers"; ``agent.stated.stated_counts``,
    or "ratings count of 500")."""
    counts = stated_counts(text)
    if counts:
        return int(round(counts[0]))
    m = _COUNT_RE2.search(text)
    return int(round(_value(m))) if m else None


# ------------------------------------------------------------------------------------------------- intents
_EXPLAIN_RE = re.compile(r"\b(why|explain\w*|factors?|drivers?|drive[sn]?|contribut\w*|shap|reasons?|what affects)\b", re.I)
_PREDICT_RE = re.compile(
    r"\b(predict\w*|estimat\w*|expect\w*|would|should|suggest\w*|recommend\w*|what discount|how much discount|"
    r"likely|forecast\w*|guess)\b", re.I)
_DISCOUNT_RE = re.compile(r"\b(discount\w*|% off|how much off|markdown|price cut)\b", re.I)
_STATS_RE = re.compile(
    r"\b(average|avg|mean|how many|number of|count of|total (number|ratings|reviews)|per (category|brand)|"
    r"by (category|brand|price band|price range)|which (categor(y|ies)|brands?|price band)|"
    r"top \d+ (categor(y|ies)|brands)|(categor(y|ies)|brands|price bands?) (with|has|have|by)|statistics|stats|"
    r"breakdown|distribution|most reviewed (brands|categor(y|ies))|"
    r"(what('s| is)|tell me|show)( me)?( the)? (max(imum)?|highest|biggest|largest|deepest) (single )?discount "
    r"(in|on|among|for|of))\b", re.I)
_REVIEW_RE = re.compile(r"\b(reviews?|customers? say|people say|feedback|complain\w*|opinions?|what do (buyers|users))\b", re.I)

@dataclass(frozen=True)
class Intent:
    """What the question asks for, as read by the rules (``kind``: search|reviews|discount|explain|stats)."""

    kind: str
    call: ToolCall
    missing: tuple[str, ...] = ()


def _search_call(question: str, vocab: CatalogVocabulary, top_k: int) -> ToolCall:
    """A search as the question words it (``agent.stated``): the product phrase as the query, price bounds,
    rating count, a rating floor, the order, the result number and a category named as the place to look."""
    args: dict[str, Any] = {"query": (product_phrase(question, vocab.category_names) or question.strip())[:500]}
    category = stated_category(question, vocab.category_names)
    if category:
        args["category"] = category
    bounds = [b for b in price_bounds(question) if b.marked or b.cue not in AMBIGUOUS_BOUND_WORDS]
    for direction in ("min", "max"):
        stated = [b.value for b in bounds if b.direction == direction]
        if stated:
            args[f"{direction}_price"] = stated[0]
    counts = stated_counts(question)
    if counts:
        args["min_rating_count"] = int(round(counts[0]))
    floors = [r.value for r in stated_ratings(question) if r.floor]
    if floors:
        args["min_rating"] = floors[0]
    sort = stated_sort(question)
    if sort is not None:
        args["sort_by"] = sort
    tops = stated_top_k(question)
    args["top_k"] = min(tops[0], top_k) if tops and tops[0] > 0 else top_k
    return ToolCall("search_products", args)




# (words, unless these words, value): the first rule that matches names the stats metric / grouping
_METRIC_RULES: list[tuple[str, str | None, str]] = [
    (r"\b(how many|number of|count)\b", r"\b(ratings|reviews)\b", "count"),
    (r"\b(total (number of )?(ratings|reviews)|(ratings|reviews) in total|most (ratings|reviews)|most reviewed"
     r"|most rated)\b", None, "total_ratings"),
    (r"\b(max(imum)?|highest|biggest|largest|deepest) discount", r"\baverage\b", "max_discount"),
    (r"discount", None, "avg_discount"),
    (r"\brat(ing|ed)", None, "avg_rating"),
    (r"\b(price|cost|expensive|cheap)", None, "avg_price"),
]
_GROUP_RULES: list[tuple[str, str | None, str]] = [
    (r"\bbrands?\b", None, "brand"),
    (r"\bprice (band|range|bracket|segment)s?\b", None, "price_band"),
    (r"\bcategor(y|ies)\b", None, "category"),
]


def _first_rule(rules: list[tuple[str, str | None, str]], text: str, default: str) -> str:
    for words, unless, value in rules:
        if re.search(words, text) and not (unless and re.search(unless, text)):
            return value
    return default


def _stats_call(question: str, vocab: CatalogVocabulary) -> ToolCall:
    q = question.lower()
    metric = _first_rule(_METRIC_RULES, q, "count")
    # "by brand", "per category", "by braand"; else the first grouping word
    group_by = stated_group(question) or _first_rule(_GROUP_RULES, q, "none")
    args: dict[str, Any] = {"metric": metric, "group_by": group_by}
    category = vocab.match_category(question)
    if category:
        args["category"] = category
        if group_by == "category":
            args["group_by"] = "none"
    brand = vocab.match_brand(question)
    if brand and group_by != "brand":
        args["brand"] = brand
    m = re.search(r"\b(?:top|first|bottom)\s+(\d{1,2})\b", q)
    if m:
        args["top_n"] = max(1, min(50, int(m.group(1))))
    if worded(question, ASCENDING_WORDS):  # "lowest", "least", "bottom" (also misspelt)
        args["order"] = "asc"
    return ToolCall("catalog_stats", args)


def _discount_call(question: str, vocab: CatalogVocabulary, explain: bool) -> tuple[ToolCall, tuple[str, ...]]:
    args: dict[str, Any] = {}
    # the kind as the question writes it where it names a catalog category (the tool resolves "smart watch" to
    # SmartWatches); else the catalog category the question's words match; else the kind as written
    kind = stated_kind(question)
    known = kind if kind and vocab.category_names.resolve(kind, fuzzy=False) else None
    category = known or vocab.match_category(question) or kind
    if category:
        args["category"] = category
    price = read_price(question)
    if price is not None:
        args["actual_price"] = price
    rating = read_rating(question)
    if rating is not None:
        args["rating"] = rating
    count = read_rating_count(question)
    if count is not None:
        args["rating_count"] = count
    missing = tuple(f for f in ("category", "actual_price", "rating", "rating_count") if f not in args)
    return ToolCall("explain_discount" if explain else "predict_discount", args), missing


def understand(question: str, vocab: CatalogVocabulary, top_k: int = 5) -> Intent:
    """Read the question with rules: which tool, with which arguments (``missing``: required fields not found)."""
    has_numbers = read_price(question) is not None or read_rating(question) is not None
    if _DISCOUNT_RE.search(question) and (has_numbers or _EXPLAIN_RE.search(question)) and not _STATS_RE.search(question):
        if _PREDICT_RE.search(question) or _EXPLAIN_RE.search(question) or has_numbers:
            explain = bool(_EXPLAIN_RE.search(question))
            call, missing = _discount_call(question, vocab, explain)
            if len(missing) <= 2 or explain:
                return Intent("explain" if explain else "discount", call, missing)
    if _STATS_RE.search(question):
        return Intent("stats", _stats_call(question, vocab))
    kind = "reviews" if _REVIEW_RE.search(question) else "search"
    return Intent(kind, _search_call(question, vocab, top_k))


def asks_for_estimate(question: str) -> bool:
    """Whether the question asks for a discount estimate or its explanation in so many words: discount wording
    beside predict or explain wording ("how much off would ... get", "what discount should we expect"), and no
    statistics wording."""
    return bool(_DISCOUNT_RE.search(question) and (_PREDICT_RE.search(question) or _EXPLAIN_RE.search(question))
                and not _STATS_RE.search(question))


def route(question: str, vocab: CatalogVocabulary, top_k: int = 5) -> ToolCall:
    """The tool call the rules choose for ``question``."""
    return understand(question, vocab, top_k).call


# ------------------------------------------------------------------------------------------------ follow-ups
_PRONOUN_RE = re.compile(
    r"\b(?P<ref>(the )?(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last|top|same) (one|product|item|result)|"
    r"this (one|product|item)|that (one|product|item)|its|it's|it|this|that|them|they|their|these|those)\b", re.I)
_ORDINALS = {"first": 0, "1st": 0, "top": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
             "fifth": 4, "5th": 4, "last": -1}
_LEADING_RE = re.compile(r"^\s*(and|so|ok|okay|also|then|what about|how about)\b[\s,]*", re.I)


@dataclass(frozen=True)
class Resolution:
    question: str
    product: dict[str, Any] | None = None


def resolve_followup(question: str, last_products: Iterable[dict[str, Any]],
                     vocab: CatalogVocabulary | None = None) -> Resolution:
    """Rewrite a follow-up that refers to an earlier product ("its reviews", "the second one") into a standalone
    question naming it. Questions that name a category or brand of their own are left alone."""
    products = [p for p in last_products if p.get("product_name")]
    m = _PRONOUN_RE.search(question)
    if not products or not m:
        return Resolution(question)
    if vocab is not None and (vocab.match_brand(question) or vocab.match_category(question)):
        return Resolution(question)
    ref = m.group("ref").lower()
    index = 0
    for word, i in _ORDINALS.items():
        if re.search(rf"\b{word}\b", ref):
            index = i
            break
    if index >= len(products):
        index = -1 if index != -1 else 0
    product = products[index]
    name = str(product["product_name"])
    replacement = f"{name}'s" if ref in ("its", "their") else name
    rewritten = question[: m.start()] + replacement + question[m.end():]
    rewritten = _LEADING_RE.sub("", rewritten).strip()
    rewritten = rewritten[0].upper() + rewritten[1:] if rewritten else rewritten
    return Resolution(rewritten, product)


# ------------------------------------------------------------------------------------------ not-in-catalog
_COMMON = {
    "i", "india", "indian", "amazon", "diwali", "holi", "please", "hi", "hello", "thanks", "what", "which", "show",
    "find", "tell", "give", "list", "compare", "rs", "inr", "mrp", "gst", "ok", "okay", "any", "is", "are", "do",
    "does", "can", "could", "would", "should", "how", "why", "the", "a", "an", "and", "or", "my", "me", "we", "our",
    "you", "your", "it", "its", "this", "that", "best", "top", "good", "great", "new", "monday", "friday",
    "sunday", "saturday", "black", "white", "prime", "sale", "festive", "q1", "q2", "q3", "q4", "ai", "faq",
}
_UNIT_RE = re.compile(r"^\d+(\.\d+)?(k|m|cm|mm|gb|tb|mb|mah|w|kw|v|hz|inch|in|l|ml|kg|g|mp|x|p|th|st|nd|rd|s|ft|"
                      r"lakh|hrs?|h|min|yr|yrs|pcs|pc)$", re.I)
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+\-]*")


def unknown_product_terms(question: str, vocab: CatalogVocabulary) -> list[str]:
    """Brand- or model-like words of ``question`` (capitalised mid-sentence, camel-cased like 'iPhone', or mixing
    letters and digits like 'S23') that occur nowhere in the catalog. Empty when the vocabulary is empty."""
    if not vocab.words:
        return []
    out = []
    for sentence in re.split(r"(?<=[.?!])\s+", question.strip()):
        tokens = list(_TOKEN_RE.finditer(sentence))
        for i, m in enumerate(tokens):
            tok = m.group(0).strip("+-")
            low = tok.lower()
            if len(tok) < 2 or low in _COMMON or _UNIT_RE.match(tok) or tok.isdigit():
                continue
            camel = bool(re.search(r"[a-z][A-Z]", tok))
            capitalised = tok[0].isupper() and i > 0
            alnum = bool(re.search(r"[A-Za-z]", tok) and re.search(r"\d", tok))
            if not (camel or capitalised or alnum):
                continue
            forms = {low, singular(low), low + "s", low + "es"}
            if low.endswith("s"):
                forms.update({low[:-1], low[:-2] if low.endswith("es") else low[:-1]})
            if forms & vocab.words:
                continue
            out.append(tok)
    return list(dict.fromkeys(out))
