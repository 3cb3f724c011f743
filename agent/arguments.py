"""The agent's checks of a model's tool arguments against the question and the catalog (:func:`vet_arguments`).

The tuned 135M model picks the right tool and copies numbers well; what it still gets wrong is fixed here where
the question (read by ``agent.stated``) or the catalog says plainly what was meant (docs/finetune.md). No check
ever puts a number in a call that the question does not state:

* **Price bounds** (:func:`check_price_bounds`, :func:`check_number_kinds`): the direction of a bound ("more
  than ₹1,400" sent as ``max_price``) as the question words it; the other end of a stated range ("₹500 to ₹600");
  a bound written as money that the call lacks ("within 350/-"); a bound whose number the question gives to
  reviews, ratings or the result count is dropped, and so is a review-count filter whose number is a price or
  a rating.
* **Counts, result numbers, ratings** (:func:`check_counts`, :func:`check_rating_count`, :func:`check_rating`):
  a number the question attaches to reviews/ratings is the rating count ("19k customer ratings" is 19000, not
  1900), one it attaches to "top / show / results" is ``top_k``, the one star rating it states is the rating.
* **Order and grouping** (:func:`check_sort`, :func:`check_order`, :func:`check_group`): a search's ``sort_by``
  as worded ("cheapest", "by rating"; one no word asks for is dropped); stats groups "lowest / least ..."
  ascending, "highest / most ..." descending, grouped "by brand / per category / which brabd / top 5 categories"
  as worded.
* **Catalog names** (:func:`resolve_names`, :func:`check_category`): a category or brand the catalog does not have
  under that name, a typo ("GellInkRollerballPens"), a piece of the brand the question names ("Tron" for "pTron"), a
  category sent as a brand or the other way round, a "category" that is only a word for the catalog, its parts or a
  ranking ("products", "catalog", "brsnd" of "which brsnd ...", "leaast"), a search category that names nothing in
  the catalog, a catalog category the question names as a place to look ("in Home&Kitchen") that the call lacks.
* **Product kind** (:func:`check_kind`, :func:`check_kind_path`, :func:`check_kind_words`): the discount tools'
  ``category`` without carried-over price words ("Case mrp"), the whole category path the question writes where
  the model sent a level of it ("Electronics" of "Electronics|...|Smartphones"), and as the question words it: the
  question's phrase most like the model's kind when it wrote another ("skippers" for "skipping ropes", a typo
  "corrected"), the whole phrase when it copied a piece ("pen" of "pen dirves").
* **Search text** (:func:`check_query`, :func:`check_query_span`, :func:`check_query_phrase`): a query that drops
  the brand the question names, covers only part of the product phrase it copies ("AGARO oven" of "AGARO oven
  toaster grills"), or has no word of the question at all ("battery" for "show usb cable within Rs. 300").
* **Missing search text** (:func:`fill_missing_query`): a search call without its query gets the question's
  product phrase.
* **Invalid or invented values** (:func:`vet_arguments`, :func:`salvage_arguments`): an optional argument that
  breaks the tool's contract is dropped (a misspelt choice corrected), an optional filter whose number the
  question never states is dropped; a required one of either kind sends the call to the rules (``agent.router``).
"""
from __future__ import annotations

import difflib
import logging
import math
import re
from typing import Any

from agent.guard import ungrounded_arguments
from agent.router import CatalogVocabulary
from agent.stated import (ASCENDING_WORDS, DESCENDING_WORDS, SORT_WORDS, price_bounds, product_phrase,
                          stated_category, stated_counts, stated_group, stated_order, stated_ratings, stated_sort,
                          stated_top_k, typo_of, worded, words_of_sorting)
from agent.tools import validate_args
from core.errors import ValidationError
from data.names import spoken_name
from tools.specs import TOOL_ARGS, literal_choices

log = logging.getLogger(__name__)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.01, abs_tol=0.01)


def check_price_bounds(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` arguments with min/max price set as the question words them, plus what changed.

    Numbers the model used move to the direction the question gives them; the other end of a stated range
    joins them; a bound written as money ("under ₹500", "within 350/-", "over 2k") that the call lacks is
    added when it is the question's only bound of that direction. A model price that matches no stated bound
    gives way to the question's one bound of that direction the call does not use, else is left as it is.
    """
    bounds = price_bounds(question)
    have = {k: arguments[k] for k in ("min_price", "max_price") if isinstance(arguments.get(k), (int, float))}
    if not bounds:
        return arguments, []
    out = dict(arguments)
    changes: list[str] = []
    placed: dict[str, float] = {}
    unmatched: list[str] = []
    for key, value in have.items():
        match = next((b for b in bounds if _close(b.value, value)), None)
        if match is None:
            placed.setdefault(key, value)
            unmatched.append(key)
            continue
        want = f"{match.direction}_price"
        placed[want] = match.value if want != key else value
        if want != key:
            changes.append(f"{key}={value:g} -> {want}")
    # a price the question never bounds ("Boat A 350 rs 200 to ₹300" sent as min_price 350) gives way to the
    # question's one bound of that direction that the call does not use
    for key in unmatched:
        value = placed.get(key)
        if value != have[key]:
            continue  # a matched bound took the key
        free = [b for b in bounds if f"{b.direction}_price" == key and not any(_close(b.value, v) for v in placed.values())]
        if len(free) == 1:
            placed[key] = free[0].value
            changes.append(f"{key}={value:g} -> {free[0].value:g} (stated)")
    # one stated range: once the model used one end, the other end belongs to the call too
    ranges = [b for b in bounds if b.in_range]
    if len(ranges) == 2 and len(placed) == 1 and any(_close(b.value, v) for b in ranges for v in placed.values()):
        other = next((b for b in ranges if f"{b.direction}_price" not in placed), None)
        if other is not None:
            placed[f"{other.direction}_price"] = other.value
            changes.append(f"added {other.direction}_price={other.value:g} (range)")
    for direction in ("min", "max"):
        stated = [b for b in bounds if b.direction == direction]
        key = f"{direction}_price"
        if len(stated) == 1 and stated[0].marked and not stated[0].in_range and key not in placed \
                and not any(_close(stated[0].value, v) for v in placed.values()):
            placed[key] = stated[0].value
            changes.append(f"added {key}={stated[0].value:g} (stated)")
    if not changes:
        return arguments, []
    out.pop("min_price", None)
    out.pop("max_price", None)
    out.update(placed)
    if "min_price" in out and "max_price" in out and out["min_price"] > out["max_price"]:
        return arguments, []  # contradictory reading: keep the model's call untouched
    return out, changes


def check_number_kinds(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` filters whose number the question attaches to something else: "8 fast chargers with
    more than 2000 customer ratings" sent as ``min_price`` 2000, "show 7" as ``max_price`` 7, "under 900/-" as
    ``min_rating_count`` 900, "at least 4 stars" as ``min_rating_count`` 4. Such a filter is dropped unless the
    question also states that number as its kind; :func:`check_price_bounds`, :func:`check_counts` and
    :func:`check_rating` then put what the question does state in its place."""
    counts, tops = stated_counts(question), stated_top_k(question)
    ratings = [r.value for r in stated_ratings(question)]
    prices = [b.value for b in price_bounds(question)]
    # per filter: (numbers the question gives to other kinds, numbers it gives to this one)
    kinds = {"min_price": ([*counts, *tops, *ratings], prices), "max_price": ([*counts, *tops, *ratings], prices),
             "min_rating_count": ([*prices, *ratings], counts)}
    out = dict(arguments)
    changes: list[str] = []
    for key, (others, own) in kinds.items():
        value = out.get(key)
        if isinstance(value, (int, float)) and any(_close(value, o) for o in others) \
                and not any(_close(value, p) for p in own):
            del out[key]
            changes.append(f"dropped {key}={value:g} (the question's number for something else)")
    return (out, changes) if changes else (arguments, [])


_PRICE_TALK = frozenset("mrp priced listed list price costing costs cost at with for of a an the rs inr".split())


def check_kind(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """The discount tools' ``category`` without the price words the model carried over from the wording around it
    ("Case mrp" from "a Cases mrp ₹1,499")."""
    category = arguments.get("category")
    if not isinstance(category, str):
        return arguments, []
    words = category.split()
    while len(words) > 1 and words[-1].lower() in _PRICE_TALK:
        words.pop()
    while len(words) > 1 and words[0].lower() in _PRICE_TALK:
        words.pop(0)
    kept = " ".join(words)
    if kept == category.strip():
        return arguments, []
    return {**arguments, "category": kept}, [f"category {category!r} -> {kept!r}"]


_PATH_RE = re.compile(r"[^\s|]+(?:\|[^\s|]+)+")  # a category path as written: levels joined by "|", no spaces


def _levels(path: str) -> list[str]:
    return [re.sub(r"[^a-z0-9]", "", level.lower()) for level in path.split("|")]


def check_kind_path(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """The discount tools' ``category`` as the whole category path the question writes ("predict the discount for
    Electronics|Mobiles&Accessories|Smartphones&BasicMobiles|Smartphones, MRP ...") where the model sent one level
    of it or a shorter run of its levels ("Electronics"): every level is a feature of the discount model, so the
    path is what was asked about. A question with no path or several, or a category that is no run of the path's
    levels, is left alone."""
    category = arguments.get("category")
    if not isinstance(category, str) or not category.strip():
        return arguments, []
    paths = {m.group(0).strip(_EDGE_PUNCT) for m in _PATH_RE.finditer(question)}
    if len(paths) != 1:
        return arguments, []
    path = paths.pop()
    levels, mine = _levels(path), _levels(category)
    if mine == levels or not any(levels[i:i + len(mine)] == mine for i in range(len(levels) - len(mine) + 1)):
        return arguments, []
    return {**arguments, "category": path}, [f"category {category!r} -> {path!r} (the path the question writes)"]


def check_rating(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """The star rating as the question states it: the discount tools' ``rating`` and a search ``min_rating``
    become the question's one stated rating where they differ from it ("4.3 star" read as 4.7 from "4.7K
    reviews"); a search that lacks the floor the question words ("4+ stars", "rated at least 4") gets it."""
    ratings = stated_ratings(question)
    key = "min_rating" if "rating" not in arguments else "rating"
    if len(ratings) != 1:
        return arguments, []
    stated = ratings[0]
    have = arguments.get(key)
    if isinstance(have, (int, float)) and not isinstance(have, bool):
        if _close(have, stated.value):
            return arguments, []
        return {**arguments, key: stated.value}, [f"{key}={have:g} -> {stated.value:g} (stated)"]
    if key == "min_rating" and have is None and stated.floor:
        return {**arguments, key: stated.value}, [f"added min_rating={stated.value:g} (stated)"]
    return arguments, []


def check_sort(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """A search ordered as the question words it: the one order it names ("cheapest", "price high to low", "by
    rating", "biggest discount") replaces a missing or different ``sort_by``; an order the question has no word
    for (``price_high`` for "ceiling fans in a budget of ₹2k") is dropped. Several orders: unchanged."""
    have = arguments.get("sort_by") or "relevance"
    want = stated_sort(question)
    if want is not None and want != have:
        return {**arguments, "sort_by": want}, [f"sort_by {have} -> {want} (as worded)"]
    if want is None and have != "relevance" and not words_of_sorting(question):
        out = dict(arguments)
        del out["sort_by"]
        return out, [f"dropped sort_by={have} (no word asks for it)"]
    return arguments, []


def check_counts(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` arguments with ``min_rating_count`` and ``top_k`` as the question types its numbers.

    A number the question attaches to reviews/ratings is a count, one it attaches to "top/show/results" is how
    many results: a model count that is really the result number moves to ``top_k``; a count that matches no
    stated count is replaced by the one count the question states; a count or result number the question states
    once but the call lacks is added. Nothing changes where the question states several candidates. A ``top_k``
    read off a name's digits ("which are the 7SEVEN remote controls" sent with ``top_k`` 7) is dropped.
    """
    counts = sorted({round(c) for c in stated_counts(question)})
    tops = sorted(set(stated_top_k(question)) - set(counts))
    out = dict(arguments)
    changes: list[str] = []
    have = out.get("min_rating_count")
    if isinstance(have, (int, float)) and not any(_close(have, c) for c in counts):
        if len(tops) == 1 and _close(have, tops[0]) and out.get("top_k") in (None, tops[0]):
            out["top_k"] = tops[0]
            del out["min_rating_count"]
            changes.append(f"min_rating_count={have:g} -> top_k")
        if len(counts) == 1:
            out["min_rating_count"] = counts[0]
            changes.append(f"min_rating_count={have:g} -> {counts[0]} (stated)")
    elif have is None and len(counts) == 1:
        out["min_rating_count"] = counts[0]
        changes.append(f"added min_rating_count={counts[0]} (stated)")
    top = out.get("top_k")
    if len(tops) == 1 and top != tops[0] and (top is None or not any(_close(top, c) for c in counts)):
        out["top_k"] = tops[0]
        changes.append(f"top_k={top} -> {tops[0]} (stated)")
    elif not tops and isinstance(top, int) and _only_inside_names(top, question):
        del out["top_k"]
        changes.append(f"dropped top_k={top} (a name's digits)")
    return (out, changes) if changes else (arguments, [])


def _only_inside_names(number: int, question: str) -> bool:
    """Whether the question writes ``number`` only inside a word ("7SEVEN", "5G", "A350"), never on its own or
    after "top" ("top5")."""
    found = list(re.finditer(rf"(?<![\d.,]){number}(?![\d.,])", question))
    return bool(found) and all(
        (m.start() and question[m.start() - 1].isalpha() and not question[:m.start()].lower().endswith("top"))
        or (m.end() < len(question) and question[m.end()].isalpha()) for m in found)


def check_rating_count(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """Discount-tool arguments whose ``rating_count`` is the count the question states ("19k customer ratings"
    read as 1900 becomes 19000); unchanged unless the question states exactly one count."""
    have = arguments.get("rating_count")
    counts = sorted({round(c) for c in stated_counts(question)})
    if not isinstance(have, (int, float)) or len(counts) != 1 or _close(have, counts[0]):
        return arguments, []
    return {**arguments, "rating_count": counts[0]}, [f"rating_count={have:g} -> {counts[0]} (stated)"]


def check_order(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` groups ranked the way the question asks (:func:`agent.stated.stated_order`): "lowest /
    least / bottom / cheapest ..." (or a typo of one) is ascending, "highest / most / top / best ..." descending;
    an ascending order the question has no word for goes back to the default (descending); words of both kinds
    keep the model's order."""
    if arguments.get("group_by") in (None, "none"):
        return arguments, []
    want = stated_order(question)
    have = arguments.get("order") or "desc"
    if want is None:
        if have == "desc" or worded(question, ASCENDING_WORDS):
            return arguments, []
        out = {k: v for k, v in arguments.items() if k != "order"}
        return out, [f"order {have} -> desc (no word asks for {have})"]
    if have == want:
        return arguments, []
    return {**arguments, "order": want}, [f"order {have} -> {want} (as worded)"]


# the words that name each average a stats call can take (read through typos: "best rared", "avrage prce")
_METRIC_WORDS = {
    "avg_price": ("price", "prices", "priced", "pricing", "pricey", "priciest", "cost", "costs", "costly", "costliest",
                  "expensive", "cheap", "cheaper", "cheapest", "affordable", "rupees", "₹"),
    "avg_rating": ("rating", "ratings", "rated", "stars", "star"),
    "avg_discount": ("discount", "discounts", "discounted", "markdown", "markdowns", "off", "deal", "deals", "savings"),
}


def _metric_words(question: str) -> set[str]:
    words = re.findall(r"[a-z]+|₹", question.lower())
    return {metric for metric, names in _METRIC_WORDS.items()
            if any(typo_of(w, names, min_len=5, cutoff=0.8) for w in words)}


def check_metric(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` averaging what the question names: an average of price, rating or discount that the
    question has no word for ("best rared categories" sent as ``avg_price``) becomes the one of the three it
    does name; where it names none or several, or the call counts or totals, unchanged."""
    have = arguments.get("metric")
    if have not in _METRIC_WORDS:
        return arguments, []
    named = _metric_words(question)
    if have in named or len(named) != 1:
        return arguments, []
    want = named.pop()
    return {**arguments, "metric": want}, [f"metric {have} -> {want} (as worded)"]


# words with which a question asks for groups, or for a choice among them, without naming the grouping
_GROUP_TALK = ("brand", "brands", "category", "categories", "band", "bands", "range", "ranges", "segment", "segments",
               "group", "groups", "grouped", "breakdown", "distribution", "compare", "compared", "comparison", "versus",
               "vs", "or", "split", "spread", "vary", "varies", "each", "per", "every", "wise", "which", "where", "who",
               "among")


def check_group(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` grouped the way the question words it ("by brand", "per category", "by braand", "which
    brabd ...", "top 5 categories ..."): the one grouping it names replaces a missing or different ``group_by``;
    a grouping where the question has no word for groups or a choice among them at all ("what is the average
    discount across the whole catalog?") is dropped."""
    want = stated_group(question)
    have = arguments.get("group_by") or "none"
    if want is None and have != "none" and not any(
            typo_of(w, _GROUP_TALK, min_len=5, cutoff=0.8) for w in re.findall(r"[a-z]+", question.lower())):
        out = {k: v for k, v in arguments.items() if k not in ("group_by", "top_n", "order")}
        return out, [f"dropped group_by {have} (the question asks for no groups)"]
    if want is None or want == have:
        return arguments, []
    return {**arguments, "group_by": want}, [f"group_by {have} -> {want} (as worded)"]


def _question_brand(brand: str, question: str, vocab: CatalogVocabulary) -> str | None:
    """The catalog brand the question names that ``brand`` is a piece or a typo of ("Tron" for "pTron", "Ulano" for
    "Ulno"), or None."""
    key = brand.lower().strip()
    if not key:
        return None
    best, best_ratio = None, 0.0
    for word in re.findall(r"[\w&'-]+", question):
        known = vocab.brands.get(word.lower())
        if not known or known.lower() == key:
            continue
        ratio = difflib.SequenceMatcher(None, key, known.lower()).ratio()
        if (key in known.lower() or ratio >= 0.75) and ratio > best_ratio:
            best, best_ratio = known, ratio
    return best


def check_category(name: str, arguments: dict[str, Any], question: str,
                   vocab: CatalogVocabulary) -> tuple[dict[str, Any], list[str]]:
    """A search or stats call that lacks the catalog category the question names as a place to look ("in
    Home&Kitchen", "from the Electronics section"; :func:`agent.stated.stated_category`) gets it (a stats call
    only when it filters by neither category nor brand)."""
    if name not in ("search_products", "catalog_stats") or arguments.get("category"):
        return arguments, []
    if name == "catalog_stats" and arguments.get("brand"):
        return arguments, []
    category = stated_category(question, vocab.category_names)
    if category is None:
        return arguments, []
    return {**arguments, "category": category}, [f"added category={category!r} (the question names it)"]


# the nouns a question puts after a name ("Abriix 8 products", "party speakers items"): left off a value
_TRAILING_NOUNS = frozenset({"product", "products", "item", "items", "brand", "brands"})
# what a question calls the catalog and its parts ("which brand has ...", "brands with the most products", "in our
# catalog") and how it ranks them ("the least", "lowest"): a category or brand argument made only of these words
# (or their typos: "brsnd", "braand", "leaast") names nothing
_GENERIC_NAMES = (*sorted(_TRAILING_NOUNS), "category", "categories", "catalog", "catalogue", *ASCENDING_WORDS,
                  *DESCENDING_WORDS)


def _generic_name(value: str) -> bool:
    """True for a filter value made only of :data:`_GENERIC_NAMES` words or their typos ("products", "brsnd")."""
    words = re.findall(r"[a-z]+", value.lower())
    return bool(words) and all(typo_of(w, _GENERIC_NAMES, min_len=5, cutoff=0.8) for w in words)


def resolve_names(name: str, arguments: dict[str, Any], vocab: CatalogVocabulary,
                  question: str = "") -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` / ``search_products`` arguments with category and brand as the catalog names them, plus
    what changed.

    A category or stats brand made only of the words a question uses for the catalog, its parts or a ranking
    ("products", "catalog", "brsnd" for "brand", "leaast") is dropped, and one that ends in such a noun loses it
    ("Abriix 8 products" -> "Abriix 8"), unless a category level or brand has that very name (the filter would
    otherwise match any path containing the word: "products" in "OfficeProducts"). A stats brand that is a piece or
    a typo of the catalog brand the question names becomes that brand ("Tron" -> "pTron"). A stats category that is
    a brand the filter would match only inside a level's words ("MI" in "MixerGrinders") becomes the brand, and one
    made of a brand and a kind ("OnePlus earbuds") is split into both. A category the tools'
    filter already matches is left as written (a broad "pens" means every kind of pen). Otherwise the catalog name
    it is a typo or plural of replaces it, written as the model wrote it (the spoken form when it used spaces); a
    brand that is really a category moves to ``category`` and the other way round; a search category that names
    nothing in the catalog is dropped (it could only empty the results; the query still carries its words). Without
    a catalog vocabulary nothing changes.
    """
    if name not in ("catalog_stats", "search_products") or not vocab.category_paths:
        return arguments, []
    out = dict(arguments)
    changes: list[str] = []
    for key in ("category", "brand") if name == "catalog_stats" else ("category",):
        value = out.get(key)
        if not isinstance(value, str) or vocab.category_names.resolve(value, fuzzy=False) \
                or vocab.brand_names.resolve(value, fuzzy=False):
            continue  # a level or brand of that very name stays ("office products" for OfficeProducts)
        if _generic_name(value):
            del out[key]
            changes.append(f"dropped {key} {value!r} (a word for the catalog itself, not a name)")
            continue
        words = value.split()
        if len(words) > 1 and words[-1].lower() in _TRAILING_NOUNS:  # "party speakers products", "Abriix 8 products"
            out[key] = " ".join(words[:-1])
            changes.append(f"{key} {value!r} -> {out[key]!r}")
    brand = out.get("brand") if name == "catalog_stats" else None
    if isinstance(brand, str) and brand.strip() and not vocab.brand_names.resolve(brand, fuzzy=False):
        named = _question_brand(brand, question, vocab)
        if named is not None:  # a piece or a typo of the brand the question names
            out["brand"] = brand = named
            changes.append(f"brand {arguments['brand']!r} -> {named!r} (the question names it)")
    if isinstance(brand, str) and brand.strip():
        known = vocab.brand_names.resolve(brand)
        if known is not None and known != brand:
            out["brand"] = known
            changes.append(f"brand {brand!r} -> {known!r}")
        elif known is None and not out.get("category") and (
                vocab.has_category(brand) or vocab.category_names.resolve(brand) is not None):
            out["category"] = out.pop("brand")
            changes.append(f"{brand!r}: brand -> category")
    category = out.get("category")
    if name == "catalog_stats" and isinstance(category, str) and not out.get("brand"):
        split = _brand_in_category(category, vocab)
        if split is not None:
            brand, kind = split
            out["brand"] = brand
            if kind is None:
                del out["category"]
                changes.append(f"{category!r}: category -> brand {brand!r}")
            else:
                out["category"] = kind
                changes.append(f"category {category!r} -> brand {brand!r}, category {kind!r}")
            category = kind
    if isinstance(category, str) and category.strip() and not vocab.has_category(category):
        known = vocab.category_names.resolve(category)
        as_brand = vocab.brand_names.resolve(category) if name == "catalog_stats" and not out.get("brand") else None
        if known is not None:
            out["category"] = spoken_name(known) if " " in category.strip() else known
            changes.append(f"category {category!r} -> {out['category']!r}")
        elif as_brand is not None:
            del out["category"]
            out["brand"] = as_brand
            changes.append(f"{category!r}: category -> brand {as_brand!r}")
        elif name == "search_products":
            del out["category"]
            changes.append(f"dropped category {category!r} (not in the catalog)")
    return out, changes


def _brand_in_category(category: str, vocab: CatalogVocabulary) -> tuple[str, str | None] | None:
    """The brand a stats ``category`` names, with what is left of it for the category (None: nothing): a brand the
    category filter matches only inside a level's words ("MI" in "MixerGrinders") -> ("MI", None); a brand and a kind
    the filter matches ("OnePlus earbuds") -> ("OnePlus", "earbuds"); None for any other category."""
    brand = vocab.brand_names.resolve(category, fuzzy=False)
    if brand is not None and vocab.category_names.resolve(category, fuzzy=False) is None \
            and not _level_word(category, vocab):
        return brand, None
    return None if vocab.has_category(category) else _brand_and_kind(category, vocab)


def _brand_and_kind(value: str, vocab: CatalogVocabulary) -> tuple[str, str] | None:
    """A category value made of a catalog brand and words the category filter matches ("OnePlus earbuds",
    "Samsung smartphones") as (brand, the rest); None for any other value."""
    words = value.split()
    for i, word in enumerate(words):
        brand = vocab.brand_names.resolve(word, fuzzy=False)
        if brand is None or _level_word(word, vocab):
            continue
        rest = " ".join(words[:i] + words[i + 1:])
        if rest and (vocab.has_category(rest) or vocab.category_names.resolve(rest) is not None):
            return brand, rest
        return None
    return None


def _level_word(value: str, vocab: CatalogVocabulary) -> bool:
    """Whether ``value`` is one of the words of a category level ("USB" of USBCables, "Kitchen" of
    Kitchen&HomeAppliances)."""
    return value.strip().lower() in vocab.level_words


def salvage_arguments(name: str, arguments: dict[str, Any], error: ValidationError) -> dict[str, Any] | None:
    """A call that breaks the tool's contract only in optional arguments, kept without them: a misspelt choice
    becomes the allowed value it spells (``group_by`` "band" -> "brand"), any other bad optional value ("min_rating"
    900, "top_k" 10000, an unknown argument) is dropped. None when a required argument is missing or bad."""
    if error.required_fields or name not in TOOL_ARGS:
        return None
    fields = TOOL_ARGS[name].model_fields
    out = dict(arguments)
    for path in error.invalid_fields:
        key = path.split(".")[0]
        if key in fields and fields[key].is_required():
            return None
        value = out.pop(key, None)
        choices = literal_choices(fields[key].annotation) if key in fields else ()
        if isinstance(value, str) and choices:
            close = difflib.get_close_matches(value.strip().lower(), choices, n=1, cutoff=0.75)
            if close:
                out[key] = close[0]
    try:
        validate_args(name, out)
    except ValidationError:
        return None
    log.info("model tool call kept without its invalid optional arguments: %s -> %s", arguments, out)
    return out


def vet_arguments(name: str, arguments: dict[str, Any], question: str,
                  vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], str | None]:
    """A model's tool arguments as the agent sends them: ``(arguments, None)``, or ``(arguments, reason)`` when
    the call must go to the rules instead: invalid for the tool's contract (``invalid_tool_call``), or a
    required number the question never states (``ungrounded_tool_args``). An invalid optional argument is dropped
    or, for a misspelt choice, corrected (:func:`salvage_arguments`). An optional filter with an invented
    number (``max_price`` 5000 where the question names no price, 4800 where it says "48K") is dropped, the rest
    of the call kept. A search call without a query gets the question's product phrase first
    (:func:`fill_missing_query`). The checks of :func:`repair_arguments` run before (they only ever put stated
    numbers in place) and again after a drop (a stated bound fills the gap: "48K" -> 48000)."""
    arguments, filled = fill_missing_query(name, arguments, question, vocab)
    if filled:
        log.info("model tool arguments repaired: %s", filled)
    try:
        validate_args(name, arguments)
    except ValidationError as exc:
        salvaged = salvage_arguments(name, arguments, exc)
        if salvaged is None:
            log.info("model tool call invalid: %s %s", exc, exc.details)
            return arguments, "invalid_tool_call"
        arguments = salvaged
    arguments, _ = repair_arguments(name, arguments, question, vocab)
    invented = ungrounded_arguments(arguments, question)
    if invented:
        fields = TOOL_ARGS[name].model_fields
        if any(fields[k].is_required() for k in invented if k in fields):
            log.info("model tool call has numbers the question does not state: %s", invented)
            return arguments, "ungrounded_tool_args"
        log.info("dropped filters with numbers the question does not state: %s",
                 {k: arguments[k] for k in invented})
        arguments = {k: v for k, v in arguments.items() if k not in invented}
        arguments, _ = repair_arguments(name, arguments, question, vocab)  # a stated bound may fill the gap
    return arguments, None


_PHRASE_STOP = frozenset(
    "under below above over within upto up less more cheaper costlier not no at min max minimum maximum top sorted "
    "by starting from between in with for having that rated priced costing budget please pls thanks asap".split())
_PHRASE_BREAK = re.compile(r"[?!;:()₹<>=]|[.,](?!\d)|\s-\s|\d+\s*(?:rs|inr|rupees|/-)|\b(?:rs|inr)\b", re.I)


_AMOUNT_WORD = re.compile(r"^\d+(?:\.\d+)?\s*(?:k|lakhs?|l)?$", re.I)  # a "brand" such as "10k" reads as a number


def brand_phrase(question: str, brand: str) -> str | None:
    """The product phrase a question names starting at ``brand``: "What do customers say about the Auralis Plus 950
    smartwatch?" -> "Auralis Plus 950 smartwatch"; it ends at punctuation, a price or a filter word."""
    m = re.search(rf"(?<![\w-]){re.escape(brand)}(?![\w-])", question, re.I)
    if m is None:
        return None
    tail = question[m.start():]
    cut = _PHRASE_BREAK.search(tail, len(m.group(0)))
    words = []
    for word in (tail[:cut.start()] if cut else tail).split():
        if words and word.lower() in _PHRASE_STOP:
            break
        words.append(word)
    return " ".join(words) or None


def check_query(arguments: dict[str, Any], question: str, vocab: CatalogVocabulary) -> tuple[dict[str, Any], list[str]]:
    """A search ``query`` that leaves out the catalog brand the question names ("What do customers say about the
    Auralis Plus 950 smartwatch?" searched as "customers") becomes the phrase the question names from that brand
    on (:func:`brand_phrase`). A brand that is also a category word ("Kitchen", "USB") or reads as an amount
    ("10k") is passed over for the next brand the question names; one the query holds with a typo changes nothing."""
    query = arguments.get("query")
    # the first brand the question names that is not also a category word or an amount ("USB wifi adapters from
    # TP-Link": "USB" is a brand too, but the category word here)
    brand = next((b for b in vocab.match_brands(question) if not (
        vocab.category_names.resolve(b, fuzzy=False) or vocab.has_category(b) or _AMOUNT_WORD.match(b))), None)
    if not isinstance(query, str) or not brand or brand.lower() in query.lower():
        return arguments, []
    if any(difflib.SequenceMatcher(None, brand.lower(), w.lower()).ratio() >= 0.8 for w in query.split()):
        return arguments, []
    phrase = brand_phrase(question, brand)
    if not phrase:
        return arguments, []
    if len(phrase.split()) == 1:  # the brand alone: keep what the model searched for beside it
        phrase = f"{phrase} {query}"
    return {**arguments, "query": phrase}, [f"query {query!r} -> {phrase!r} (the question names {brand!r})"]


_SPAN_STOP = _PHRASE_STOP | frozenset(
    "sorted ordered cheapest priciest costliest most best highest lowest biggest show just only top the a an on to "
    "which who at near like i me my we our you is are do does can will should of rating ratings reviews rs inr rupees"
    .split())
_UNIT_AFTER = re.compile(r"^(?:k|stars?|★|ratings?|reviews?|reviewers|votes|rs\.?|rupees|inr|/-|lakhs?|thousand|%)$",
                         re.I)
_TOKEN_RE = re.compile(r"\S+")
_EDGE_PUNCT = ",.!?;:()\"'"
MAX_SPAN_WORDS = 4


# words that open a request before its product phrase ("Do we sell ...", "suggest budget ...")
_LEAD_WORDS = frozenset(
    "show find search list need suggest recommend get got want looking look help sell stock any some all me us do we "
    "you i can could would please pls what which where are is there have has buy compare tell about".split())
_LEAD_STOP = _SPAN_STOP | _LEAD_WORDS | frozenset(SORT_WORDS) | frozenset("rated highly cheap budget".split())
MAX_LEAD_WORDS = 2


def _copies(question: str, text: str) -> tuple[list[str], list[str], list[str], list[int]]:
    """The question's tokens, their bare lower-cased words, ``text``'s words, and where ``text`` is copied word for
    word in the question (start indices)."""
    raw = _TOKEN_RE.findall(question)
    words = [t.strip(_EDGE_PUNCT).lower() for t in raw]
    want = [w.strip(_EDGE_PUNCT).lower() for w in text.split()]
    return raw, words, want, [i for i in range(len(words) - len(want) + 1) if words[i:i + len(want)] == want]


def _opens_request(word: str) -> bool:
    """Whether ``word`` is (or is a typo of: "Fnid", "Shiw") a word that opens a request or a filter."""
    return word in _LEAD_STOP or typo_of(word, _LEAD_WORDS, min_len=4, cutoff=0.75) is not None


def check_query_span(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """A search ``query`` that covers only part of the product phrase it copies runs on to the phrase's ends:
    forward ("AGARO oven" from "AGARO oven toaster grills in the Home&Kitchen category", "boAt" from "boAt on-ear at
    most Rs. 1,300") up to a filter or small word, punctuation, a price, or a number with a unit (at most
    ``MAX_SPAN_WORDS`` words), and back ("electric krttle" from "suggest budget iBELLL electric krttle") over words
    that do not open the request (at most ``MAX_LEAD_WORDS``). A copy that skips a word or two of the phrase gets
    them back ("Tukzre Foldable" from "Tukzre Fuly Foldable", :func:`_gapped_copies`); a query not copied in order
    is left alone."""
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return arguments, []
    raw, words, want, starts = _copies(question, query)
    core = query.strip()
    spans = [(i, i + len(want)) for i in starts] or _gapped_copies(words, want)
    if len(spans) != 1:
        return arguments, []  # not copied, or copied twice
    start, end = spans[0]
    if not starts:  # the words the copy skipped go back in
        core = " ".join(t.strip(_EDGE_PUNCT) for t in raw[start:end])
    after: list[str] = []
    if raw[end - 1].rstrip(_EDGE_PUNCT) == raw[end - 1]:  # the copy does not end at punctuation
        for i in range(end, min(len(raw), end + MAX_SPAN_WORDS)):
            token, word = raw[i], words[i]
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if not word or word in _SPAN_STOP or token[0] in "₹(<>" or re.search(r"[₹★+%]|/-", token) \
                    or (re.search(r"\d", word) and (_UNIT_AFTER.match(nxt) or re.fullmatch(r"[\d.,]+k?", word) and
                                                      "," in word)):
                break
            after.append(token.strip(_EDGE_PUNCT))
            if token.rstrip(_EDGE_PUNCT) != token:
                break
        while after and after[-1].lower() in ("and", "or", "&", "with"):
            after.pop()
    before: list[str] = []
    for i in range(start - 1, max(-1, start - 1 - MAX_LEAD_WORDS), -1):
        token, word = raw[i], words[i]
        if not word or token.rstrip(_EDGE_PUNCT) != token or re.search(r"\d|[₹★]", token) or _opens_request(word):
            break
        before.insert(0, token.strip(_EDGE_PUNCT))
    if not after and not before and core == query.strip():
        return arguments, []
    phrase = " ".join([*before, core, *after])
    return {**arguments, "query": phrase}, [f"query {query!r} -> {phrase!r} (the whole phrase)"]


MAX_SKIPPED_WORDS = 2


def _gapped_copies(words: list[str], want: list[str]) -> list[tuple[int, int]]:
    """Where the question holds ``want``'s words in order with up to ``MAX_SKIPPED_WORDS`` product words left out
    between them ("Tukzre Foldable" in "Tukzre Fuly Foldable"; not over a filter or small word: "cable for
    phone"), as (start, end) token spans."""
    if len(want) < 2:
        return []
    spans = []
    for start in (i for i, w in enumerate(words) if w == want[0]):
        i, skipped = start + 1, 0
        for w in want[1:]:
            while i < len(words) and words[i] != w and skipped < MAX_SKIPPED_WORDS and words[i] \
                    and words[i] not in _SPAN_STOP and not re.search(r"\d", words[i]):
                i, skipped = i + 1, skipped + 1
            if i >= len(words) or words[i] != w:
                break
            i += 1
        else:
            if skipped:
                spans.append((start, i))
    return spans


PHRASE_WORD_CUTOFF = 0.8  # difflib ratio at which a query word is a question word written another way ("fab", "fabs")
_QUERY_WORD = re.compile(r"[^\W_]+")


def check_query_phrase(arguments: dict[str, Any], question: str,
                       vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], list[str]]:
    """A search ``query`` with no word of the question ("battery" for "show usb cable within Rs. 300 thanks")
    becomes the question's product phrase (:func:`agent.stated.product_phrase`: what is left of the question
    without its filters, order, result number, category and request words), less any request or small words at
    its ends ("Tell me about the ..."), when three letters or digits, two of them letters, are left ("4 in 1";
    not "q 700"). Words count as the same through a typo (difflib ratio >= ``PHRASE_WORD_CUTOFF``), so a query
    that shares one word with the question, even misspelt, is left alone: a piece of the phrase is
    :func:`check_query_span`'s to grow, and this phrase is a guess that fails on questions unlike a search
    ("What do customers say about ...")."""
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return arguments, []
    said = frozenset(w.lower() for w in _QUERY_WORD.findall(question))
    if any(typo_of(w.lower(), said, min_len=0, cutoff=PHRASE_WORD_CUTOFF) for w in _QUERY_WORD.findall(query)):
        return arguments, []
    phrase = search_phrase(question, vocab)
    if phrase is None:
        return arguments, []  # no product words left ("best rated q 700" -> "q 700"): the model's query stays
    return {**arguments, "query": phrase}, [f"query {query!r} -> {phrase!r} (no word of the question)"]


GARBLED_WORD_CUTOFF = 0.6  # difflib ratio at which a query word no question word spells is one garbled ("surgurp")


def check_query_words(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """A search ``query`` that copies the question's product phrase but garbles a word of it ("surgurp protectors"
    for "cheap surge protectors") gets the question's word back: a query word no question word spells (difflib
    ratio < ``PHRASE_WORD_CUTOFF``) that stands where the question has a word at least ``GARBLED_WORD_CUTOFF``
    alike, next to a word the query copies. A query that copies no word is :func:`check_query_phrase`'s."""
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return arguments, []
    raw, said, want, _ = _copies(question, query)
    blocks = difflib.SequenceMatcher(None, want, said, autojunk=False).get_opcodes()
    if not any(tag == "equal" for tag, *_ in blocks):
        return arguments, []
    spelled = frozenset(said)
    out = query.split()
    for n, (tag, q0, q1, s0, s1) in enumerate(blocks):
        if tag != "replace":
            continue
        width = min(q1 - q0, s1 - s0)
        if n > 0 and blocks[n - 1][0] == "equal":                  # aligned from the copied word before the block
            pairs = zip(range(q0, q0 + width), range(s0, s0 + width))
        elif n + 1 < len(blocks) and blocks[n + 1][0] == "equal":  # ... or from the one after it
            pairs = zip(range(q1 - width, q1), range(s1 - width, s1))
        else:
            continue
        for qi, si in pairs:
            word, theirs = want[qi], said[si]
            if not theirs or theirs in _SPAN_STOP or typo_of(word, spelled, min_len=0, cutoff=PHRASE_WORD_CUTOFF):
                continue
            if difflib.SequenceMatcher(None, word, theirs).ratio() >= GARBLED_WORD_CUTOFF:
                out[qi] = raw[si].strip(_EDGE_PUNCT)
    fixed = " ".join(out)
    if fixed == query:
        return arguments, []
    return {**arguments, "query": fixed}, [f"query {query!r} -> {fixed!r} (the question's words)"]


def search_phrase(question: str, vocab: CatalogVocabulary | None = None) -> str | None:
    """The question's product phrase (:func:`agent.stated.product_phrase`) less any request or small words at its
    ends ("Tell me about the ..."), or None unless three letters or digits, two of them letters, are left."""
    phrase = product_phrase(question, vocab.category_names if vocab is not None else None) or ""
    tokens = phrase.split()
    while tokens and _opens_request(tokens[0].strip(_EDGE_PUNCT).lower()):  # "Tell me about the ..."
        tokens.pop(0)
    while tokens and tokens[-1].strip(_EDGE_PUNCT).lower() in _SPAN_STOP:
        tokens.pop()
    phrase = " ".join(tokens)
    if sum(ch.isalnum() for ch in phrase) < 3 or sum(ch.isalpha() for ch in phrase) < 2:
        return None
    return phrase


def fill_missing_query(name: str, arguments: dict[str, Any], question: str,
                       vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], list[str]]:
    """A search call without its required ``query`` ("6 most expensive Karbonn standard televisions" sent as
    ``{"top_k": 6, "sort_by": "price_high"}``) gets the question's product phrase (:func:`search_phrase`), so the
    rest of the call is kept; without a phrase it stays invalid and goes to the rules."""
    query = arguments.get("query")
    if name != "search_products" or (isinstance(query, str) and query.strip()):
        return arguments, []
    phrase = search_phrase(question, vocab)
    if phrase is None:
        return arguments, []
    return {**arguments, "query": phrase}, [f"added query={phrase!r} (the call had none)"]


_KIND_STOP = _SPAN_STOP | _PRICE_TALK | frozenset(
    "worth sell sells sold selling retails retailing goes going launched launching new this these those such similar "
    "discount discounts category kind type estimate predict expect guess".split())
KIND_MATCH_CUTOFF = 0.65  # difflib ratio of the model's kind to a question phrase ("skippers" ~ "skipping ropes": 0.67)
MAX_KIND_WORDS = 4
MAX_KIND_GROW = 2


def _kind_word(token: str) -> bool:
    """Whether a question token can be part of the product kind a discount question names."""
    word = token.strip(_EDGE_PUNCT).lower()
    return bool(word) and any(ch.isalpha() for ch in word) and not re.search(r"\d|[₹★|%/]", word) \
        and word not in _KIND_STOP


def check_kind_words(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """The discount tools' ``category`` as the question words the product kind: a kind that is not the question's
    words (a typo "corrected", "skippers" for "skipping ropes", "domestic cameras" for "dome cameras") becomes the
    question's phrase most like it (difflib ratio >= ``KIND_MATCH_CUTOFF``, one best phrase); a kind that is
    only part of the phrase ("pen" of "pen dirves listed at ...") runs on over the words around it up to a price,
    filter or small word, a number or punctuation (``MAX_KIND_GROW`` words each way). A full category path, or a
    kind like no phrase of the question, is left alone; the discount tool then resolves the name
    (``tools.discount.features.resolve_leaf``, which tolerates typos)."""
    category = arguments.get("category")
    if not isinstance(category, str) or not category.strip() or "|" in category:
        return arguments, []
    raw, words, want, starts = _copies(question, category)
    n = len(want)
    if len(starts) > 1:
        return arguments, []  # copied, twice: which one is meant is not ours to say
    if starts:
        start, end = starts[0], starts[0] + n
    else:
        key = "".join(want)
        scored: dict[tuple[int, int], float] = {}
        for i in range(len(raw)):
            for j in range(i + 1, min(len(raw), i + MAX_KIND_WORDS) + 1):
                if not _kind_word(raw[j - 1]):
                    break
                scored[(i, j)] = difflib.SequenceMatcher(None, key, "".join(words[i:j])).ratio()
                if raw[j - 1].rstrip(_EDGE_PUNCT) != raw[j - 1]:
                    break  # a phrase ends at punctuation
        ranked = sorted(scored.items(), key=lambda kv: kv[1], reverse=True)
        if not ranked or ranked[0][1] < KIND_MATCH_CUTOFF or len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
            return arguments, []
        start, end = ranked[0][0]
    for _ in range(MAX_KIND_GROW):  # on over the rest of the phrase ...
        if end >= len(raw) or raw[end - 1].rstrip(_EDGE_PUNCT) != raw[end - 1] or not _kind_word(raw[end]):
            break
        end += 1
    for _ in range(MAX_KIND_GROW):  # ... and back over the words before it that do not open the request
        if start == 0 or raw[start - 1].rstrip(_EDGE_PUNCT) != raw[start - 1] or not _kind_word(raw[start - 1]) \
                or _opens_request(words[start - 1]):
            break
        start -= 1
    phrase = " ".join(t.strip(_EDGE_PUNCT) for t in raw[start:end])
    if phrase.lower() == " ".join(want) or not phrase:
        return arguments, []
    return {**arguments, "category": phrase}, [f"category {category!r} -> {phrase!r} (the question's words)"]


def repair_arguments(name: str, arguments: dict[str, Any], question: str,
                     vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], list[str]]:
    """A model's (valid, grounded) tool arguments after every check of this module, plus what changed (logged)."""
    changes: list[str] = []
    for check in _QUESTION_CHECKS.get(name, ()):
        arguments, fixed = check(arguments, question)
        changes += fixed
    if vocab is not None:
        arguments, fixed = resolve_names(name, arguments, vocab, question)
        changes += fixed
        arguments, fixed = check_category(name, arguments, question, vocab)
        changes += fixed
        if name == "search_products":
            arguments, fixed = check_query(arguments, question, vocab)
            changes += fixed
    if name == "search_products":
        arguments, fixed = check_query_words(arguments, question)
        changes += fixed
        arguments, fixed = check_query_span(arguments, question)
        changes += fixed
        arguments, fixed = check_query_phrase(arguments, question, vocab)
        changes += fixed
    if changes:
        log.info("model tool arguments repaired: %s", changes)
    return arguments, changes


# the checks that read only the question, per tool (the catalog checks follow them in repair_arguments)
_QUESTION_CHECKS = {
    "search_products": (check_number_kinds, check_price_bounds, check_counts, check_rating, check_sort),
    "catalog_stats": (check_metric, check_group, check_order),
    "predict_discount": (check_kind, check_kind_path, check_kind_words, check_rating_count, check_rating),
    "explain_discount": (check_kind, check_kind_path, check_kind_words, check_rating_count, check_rating)}
