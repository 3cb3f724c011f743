"""The agent's checks of a model's tool arguments against the question and the catalog (:func:`vet_arguments`).

The tuned 135M model picks the right tool and copies numbers well; what it still gets wrong is fixed here where
the question or the catalog says plainly what was meant (docs/finetune.md). No check ever puts a number in a
call that the question does not state:

* **Price bounds** (:func:`check_price_bounds`): the direction of a bound ("more than ₹1,400" sent as
  ``max_price``) as the question words it; the other end of a stated range ("₹500 to ₹600"); a bound written as
  money that the call lacks ("within 350/-").
* **Counts and result numbers** (:func:`check_counts`, :func:`check_rating_count`): a number the question
  attaches to reviews/ratings is the rating count ("19k customer ratings" is 19000, not 1900), one it attaches
  to "top / show / results" is ``top_k``.
* **Ranking** (:func:`check_order`): "lowest / least / bottom ..." groups ascending, "highest / most / top ..."
  descending.
* **Catalog names** (:func:`resolve_names`): a category or brand the catalog does not have under that name,
  a typo ("GellInkRollerballPens"), a category sent as a brand or the other way round, a search category
  that names nothing in the catalog.
* **Invented numbers** (:func:`vet_arguments`): an optional filter whose number the question never states is
  dropped; a required one sends the call to the rules (``agent.router``).
"""
from __future__ import annotations

import difflib
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from agent.guard import ungrounded_arguments
from agent.protocol import UNIT_SCALE
from agent.router import ASCENDING_WORDS, CatalogVocabulary
from agent.tools import validate_args
from core.errors import ValidationError
from data.names import spoken_name
from tools.specs import TOOL_ARGS

log = logging.getLogger(__name__)

_NUM = r"(\d{1,3}(?:,\d{2,3})+|\d+(?:\.\d+)?)"
_UNIT = r"(k|thousand|lakhs?|lacs?)\b"
_AMOUNT = rf"(?:₹|\brs\.?|\binr)?\s*{_NUM}\s*(?:{_UNIT})?\s*(?:rupees|rs\b\.?|inr\b|/-)?"
_AMOUNT_RE = re.compile(_AMOUNT, re.I)
_RANGE_RE = re.compile(rf"(?:between\s+|from\s+)?{_AMOUNT}\s*(?:to|-|–|and)\s*{_AMOUNT}", re.I)
_MAX_RE = re.compile(r"(?:\bunder|\bbelow|\bless than|\blower than|\bcheaper than|\bwithin|\bup ?to|\bupto|\bat most"
                     r"|\bnot more than|\bno more than|\bnot above|\bnot over|\bmax(?:imum)?(?: price)?|\bbudget(?: of)?"
                     r"|<=?|≤)\s*$", re.I)
_MIN_RE = re.compile(r"(?:\bover|\babove|\bmore than|\bgreater than|\bhigher than|\bat least|\bstarting (?:from|at)"
                     r"|\bfrom|\bmin(?:imum)?(?: price)?|\bcostlier than|\bpricier than|>=?|≥)\s*$", re.I)
# words between a bound and its amount that do not change it ("under a budget of", "costing over rs")
_GLUE_RE = re.compile(r"(?:\s*(?:a|the|of|price|priced|costing)\b)*\s*$", re.I)
_MONEY_RE = re.compile(r"₹|\brs\b|\binr\b|rupees|/-|\d\s*(?:k|thousand|lakhs?|lacs?)\b", re.I)
_NOT_PRICE_RE = re.compile(r"^\s*\+?\s*(?:user |customer )?(?:ratings\b|reviews?\b|reviewers|votes|stars?\b|★)", re.I)


@dataclass(frozen=True)
class PriceBound:
    value: float
    direction: str  # "min" | "max"
    in_range: bool = False  # one end of a stated range ("₹500 to ₹600")
    marked: bool = False  # written as money: ₹, rs, INR, rupees, /-, or a k/lakh amount


def _amount(number: str, unit: str | None) -> float:
    return float(number.replace(",", "")) * UNIT_SCALE.get((unit or "").lower(), 1.0)


def price_bounds(question: str) -> list[PriceBound]:
    """The price bounds a question states in words: "under ₹500" (max), "over 1.2k rupees" (min), and both ends
    of a range ("₹500 to 600", "between 1,000 and 2,000"). Numbers followed by ratings/reviews/stars are not
    prices; numbers without a direction word are ignored."""
    text = question
    out: list[PriceBound] = []
    for m in _RANGE_RE.finditer(text):
        tail = text[m.end():]
        if _NOT_PRICE_RE.match(tail):
            continue
        lo, hi = _amount(m.group(1), m.group(2)), _amount(m.group(3), m.group(4))
        if 0 < lo < hi:
            out += [PriceBound(lo, "min", True), PriceBound(hi, "max", True)]
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
    for m in _AMOUNT_RE.finditer(text):
        if not m.group(1) or _NOT_PRICE_RE.match(text[m.end():]):
            continue
        before = _GLUE_RE.sub("", text[max(0, m.start() - 40):m.start()])
        marked = bool(_MONEY_RE.search(m.group(0)))
        if _MAX_RE.search(before):
            out.append(PriceBound(_amount(m.group(1), m.group(2)), "max", marked=marked))
        elif _MIN_RE.search(before):
            out.append(PriceBound(_amount(m.group(1), m.group(2)), "min", marked=marked))
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.01, abs_tol=0.01)


def check_price_bounds(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` arguments with min/max price set as the question words them, plus what changed.

    Numbers the model used move to the direction the question gives them; the other end of a stated range
    joins them; a bound written as money ("under ₹500", "within 350/-", "over 2k") that the call lacks is
    added when it is the question's only bound of that direction. A model price that matches no stated bound
    is left as it is.
    """
    bounds = price_bounds(question)
    have = {k: arguments[k] for k in ("min_price", "max_price") if isinstance(arguments.get(k), (int, float))}
    if not bounds:
        return arguments, []
    out = dict(arguments)
    changes: list[str] = []
    placed: dict[str, float] = {}
    for key, value in have.items():
        match = next((b for b in bounds if _close(b.value, value)), None)
        if match is None:
            placed.setdefault(key, value)
            continue
        want = f"{match.direction}_price"
        placed[want] = match.value if want != key else value
        if want != key:
            changes.append(f"{key}={value:g} -> {want}")
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


_COUNT_RE = re.compile(rf"{_NUM}\s*(?:{_UNIT})?\s*\+?\s*(?:user |customer |buyer )?(?:ratings|reviews|reviewers|votes|raters)\b",
                       re.I)
_TOP_K_RE = re.compile(r"\b(?:top|show(?: me)?|list|give me|just|only)\s+(\d{1,2})\b(?![.,]\d|\s*(?:k\b|%|★|\+|stars?\b"
                       r"|rs\b|rupees|inr\b|/-|lakh|thousand|(?:user |customer )?(?:ratings|reviews|reviewers)))"
                       r"|\b(\d{1,2})\s+(?:results|options|items|products|picks|suggestions)\b", re.I)


def stated_counts(question: str) -> list[float]:
    """Rating counts the question states: "10k user reviews", "2,000+ customer ratings" (values, in order)."""
    return [_amount(m.group(1), m.group(2)) for m in _COUNT_RE.finditer(question)]


def stated_top_k(question: str) -> list[int]:
    """How many results the question asks for: "top 10", "show 6", "(8 results)", "3 options"."""
    return [int(m.group(1) or m.group(2)) for m in _TOP_K_RE.finditer(question)]


def check_counts(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` arguments with ``min_rating_count`` and ``top_k`` as the question types its numbers.

    A number the question attaches to reviews/ratings is a count, one it attaches to "top/show/results" is how
    many results: a model count that is really the result number moves to ``top_k``; a count that matches no
    stated count is replaced by the one count the question states; a count or result number the question states
    once but the call lacks is added. Nothing changes where the question states several candidates.
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
    return (out, changes) if changes else (arguments, [])


def check_rating_count(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """Discount-tool arguments whose ``rating_count`` is the count the question states ("19k customer ratings"
    read as 1900 becomes 19000); unchanged unless the question states exactly one count."""
    have = arguments.get("rating_count")
    counts = sorted({round(c) for c in stated_counts(question)})
    if not isinstance(have, (int, float)) or len(counts) != 1 or _close(have, counts[0]):
        return arguments, []
    return {**arguments, "rating_count": counts[0]}, [f"rating_count={have:g} -> {counts[0]} (stated)"]


_ASC_RE = re.compile(rf"\b({'|'.join(ASCENDING_WORDS + ('minimum',))})\b", re.I)
_DESC_RE = re.compile(r"\b(highest|most|top|biggest|largest|best|deepest|costliest|priciest|maximum|greatest)\b",
                      re.I)


def check_order(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` groups ranked the way the question asks: "lowest / least / bottom / cheapest ..." is
    ascending, "highest / most / top / best ..." descending; a question with words of both kinds, or neither,
    keeps the model's order."""
    if arguments.get("group_by") in (None, "none"):
        return arguments, []
    asc, desc = bool(_ASC_RE.search(question)), bool(_DESC_RE.search(question))
    if asc == desc:
        return arguments, []
    want = "asc" if asc else "desc"
    have = arguments.get("order") or "desc"
    if have == want:
        return arguments, []
    return {**arguments, "order": want}, [f"order {have} -> {want} (as worded)"]


def resolve_names(name: str, arguments: dict[str, Any], vocab: CatalogVocabulary) -> tuple[dict[str, Any], list[str]]:
    """``catalog_stats`` / ``search_products`` arguments with category and brand as the catalog names them, plus
    what changed.

    A category the tools' filter already matches is left as written (a broad "pens" means every kind of pen).
    Otherwise the catalog name it is a typo or plural of replaces it, written as the model wrote it (the spoken
    form when it used spaces); a brand that is really a category moves to ``category`` and the other way round;
    a search category that names nothing in the catalog is dropped (it could only empty the results; the query
    still carries its words). Without a catalog vocabulary nothing changes.
    """
    if name not in ("catalog_stats", "search_products") or not vocab.category_paths:
        return arguments, []
    out = dict(arguments)
    changes: list[str] = []
    brand = out.get("brand") if name == "catalog_stats" else None
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


def vet_arguments(name: str, arguments: dict[str, Any], question: str,
                  vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], str | None]:
    """A model's tool arguments as the agent sends them: ``(arguments, None)``, or ``(arguments, reason)`` when
    the call must go to the rules instead: invalid for the tool's contract (``invalid_tool_call``), or a
    required number the question never states (``ungrounded_tool_args``). An optional filter with an invented
    number (``max_price`` 5000 where the question names no price, 4800 where it says "48K") is dropped, the rest
    of the call kept. The checks of :func:`repair_arguments` run before (they only ever put stated numbers in
    place) and again after a drop (a stated bound fills the gap: "48K" -> 48000)."""
    try:
        validate_args(name, arguments)
    except ValidationError as exc:
        log.info("model tool call invalid: %s %s", exc, exc.details)
        return arguments, "invalid_tool_call"
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
    on (:func:`brand_phrase`). A brand that is also a category word ("Kitchen") or reads as an amount ("10k"),
    or that the query holds with a typo, changes nothing."""
    query = arguments.get("query")
    brand = vocab.match_brand(question)
    if not isinstance(query, str) or not brand or brand.lower() in query.lower():
        return arguments, []
    if vocab.category_names.resolve(brand, fuzzy=False) or vocab.has_category(brand) or _AMOUNT_WORD.match(brand):
        return arguments, []
    if any(difflib.SequenceMatcher(None, brand.lower(), w.lower()).ratio() >= 0.8 for w in query.split()):
        return arguments, []
    phrase = brand_phrase(question, brand)
    if not phrase:
        return arguments, []
    if len(phrase.split()) == 1:  # the brand alone: keep what the model searched for beside it
        phrase = f"{phrase} {query}"
    return {**arguments, "query": phrase}, [f"query {query!r} -> {phrase!r} (the question names {brand!r})"]


def repair_arguments(name: str, arguments: dict[str, Any], question: str,
                     vocab: CatalogVocabulary | None = None) -> tuple[dict[str, Any], list[str]]:
    """A model's (valid, grounded) tool arguments after every check of this module, plus what changed (logged)."""
    changes: list[str] = []
    for check in _QUESTION_CHECKS.get(name, ()):
        arguments, fixed = check(arguments, question)
        changes += fixed
    if vocab is not None:
        arguments, fixed = resolve_names(name, arguments, vocab)
        changes += fixed
        if name == "search_products":
            arguments, fixed = check_query(arguments, question, vocab)
            changes += fixed
    if changes:
        log.info("model tool arguments repaired: %s", changes)
    return arguments, changes


# the checks that read only the question, per tool (the catalog checks follow them in repair_arguments)
_QUESTION_CHECKS = {"search_products": (check_price_bounds, check_counts), "catalog_stats": (check_order,),
                    "predict_discount": (check_rating_count,), "explain_discount": (check_rating_count,)}
