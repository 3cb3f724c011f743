"""What a question states in words, read without any model: price bounds, rating counts, result numbers, ratings,
a sort order and a named catalog category. The agent checks a model's tool arguments against these
(``agent.arguments``); every reader returns only what the wording makes plain and nothing where it is ambiguous.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.protocol import UNIT_SCALE

if TYPE_CHECKING:  # pragma: no cover
    from data.names import NameIndex

_NUM = r"(\d{1,3}(?:,\d{2,3})+|\d+(?:\.\d+)?)"
_UNIT = r"(k|thousand|lakhs?|lacs?)\b"
_AMOUNT = rf"(?:₹|\brs\.?|\binr)?\s*{_NUM}\s*(?:{_UNIT})?\s*(?:rupees|rs\b\.?|inr\b|/-)?"
_AMOUNT_RE = re.compile(_AMOUNT, re.I)
_RANGE_RE = re.compile(rf"(?:between\s+|from\s+)?{_AMOUNT}\s*(?:to|-|–|and)\s*{_AMOUNT}", re.I)
# a negated floor word is a ceiling and back: "nothing above ₹1,200", "not higher than", "nothing below 500"
_MAX_RE = re.compile(r"(?:\bunder|\bbelow|\bless than|\blower than|\bcheaper than|\bwithin|\bup ?to|\bupto|\bat most"
                     r"|\bnot more than|\bno more than|\bnot above|\bnot over"
                     r"|\b(?:nothing|none|not|no) (?:above|over|more than|higher than|pricier than|costlier than)"
                     r"|\bmax(?:imum)?(?: price)?|\bbudget(?:\s*(?:of|is|:|=))?(?:\s*(?:around|about|roughly))?"
                     r"|<=?|≤)\s*$", re.I)
_MIN_RE = re.compile(r"(?:\bover|\babove|\bmore than|\bno(?:t)? less than|\bgreater than|\bhigher than|\bat least|\bstarting (?:from|at)"
                     r"|\b(?:nothing|none|not|no) (?:under|below|less than|lower than|cheaper than)"
                     r"|\bfrom|\bmin(?:imum)?(?: price)?|\bcostlier than|\bpricier than|>=?|≥)\s*$", re.I)
# a direction written after the amount: "₹2000 max", "1,500 or more", "800 and below", "500 onwards"
# (not when the words lead into another amount or filter: "Air 850 at most INR 450", "Plus 650 min price 300")
_AFTER_END = r"\b(?!\s*(?:₹|rs\b|inr\b|\d|price|rating|ratings|reviews?|stars?|of\b|than\b))"
_MAX_AFTER_RE = re.compile(r"^\s*(?:max(?:imum)?|tops|at most|or (?:less|lower|below|under|cheaper)"
                           rf"|and (?:below|under|less|lower)){_AFTER_END}", re.I)
_MIN_AFTER_RE = re.compile(r"^\s*(?:min(?:imum)?|at least|onwards|or (?:more|higher|above|over|costlier|pricier)"
                           rf"|and (?:above|over|up|more|higher)){_AFTER_END}", re.I)
# words between a bound and its amount that do not change it ("under a budget of", "costing over rs")
_GLUE_RE = re.compile(r"(?:\s*(?:a|the|of|price|priced|costing)\b)*\s*$", re.I)
_CURRENCY = r"₹|\brs\b|\binr\b|rupees|/-"
_CURRENCY_RE = re.compile(_CURRENCY, re.I)
_MONEY_RE = re.compile(rf"{_CURRENCY}|\d\s*(?:k|thousand|lakhs?|lacs?)\b", re.I)  # currency, or a k/lakh amount
_COUNT_WORDS = r"ratings?|rated|reviews?|reviewers|stars?|votes"
# a count or rating word just before a number (up to two words between): "reviews, say 5k or more"
_NOT_PRICE_NEAR = re.compile(rf"\b(?:{_COUNT_WORDS})\b\W*(?:\w+\W*){{0,2}}$", re.I)
_NOT_PRICE_LEAD = re.compile(rf"\b(?:{_COUNT_WORDS}|count)\s*(?:of\s*)?$", re.I)
_NOT_PRICE_RE = re.compile(r"^\s*\+?\s*(?:user |customer )?(?:ratings\b|reviews?\b|reviewers|votes|stars?\b|★)", re.I)


@dataclass(frozen=True)
class PriceBound:
    value: float
    direction: str  # "min" | "max"
    in_range: bool = False  # one end of a stated range ("₹500 to ₹600")
    marked: bool = False  # written as money: ₹, rs, INR, rupees, /-, or a k/lakh amount
    span: tuple[int, int] = (0, 0)  # where the question says it, with its direction words ("under ₹500")
    cue: str = ""  # the direction words ("under", "budget of"), "range" for a range


def typo_of(word: str, words: tuple[str, ...] | frozenset[str], *, min_len: int, cutoff: float) -> str | None:
    """The word of ``words`` that ``word`` is, or is a typo of ("lwoest" -> "lowest"): an exact member, or the
    closest one at least ``cutoff`` alike when ``word`` has ``min_len`` letters or more; else None."""
    if word in words:
        return word
    if len(word) < min_len:
        return None
    close = difflib.get_close_matches(word, list(words), n=1, cutoff=cutoff)
    return close[0] if close else None


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
        if 0 < lo <= hi:
            marked = bool(_MONEY_RE.search(m.group(0)))
            out += [PriceBound(lo, "min", True, marked, m.span(), "range"),
                    PriceBound(hi, "max", True, marked, m.span(), "range")]
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
    for m in _AMOUNT_RE.finditer(text):
        if not m.group(1) or _NOT_PRICE_RE.match(text[m.end():]):
            continue
        start = max(0, m.start() - 40)
        before = _GLUE_RE.sub("", text[start:m.start()])
        marked = bool(_MONEY_RE.search(m.group(0)))
        cues = [(c, direction) for direction, rx in (("max", _MAX_RE), ("min", _MIN_RE)) if (c := rx.search(before))]
        value = _amount(m.group(1), m.group(2))
        if not cues:
            # "₹2000 max", "1,500 or more": written as money or a price-sized number, and not a rating's
            after = text[m.end():]
            cues_after = [(c, d) for d, rx in (("max", _MAX_AFTER_RE), ("min", _MIN_AFTER_RE)) if (c := rx.match(after))]
            currency = bool(_CURRENCY_RE.search(m.group(0)))
            if cues_after and (currency or value >= 100 and not _NOT_PRICE_NEAR.search(text[start:m.start()])):
                cue, direction = cues_after[0]
                out.append(PriceBound(value, direction, marked=marked, span=(m.start(), m.end() + cue.end()),
                                      cue=cue.group(0).strip().lower()))
            continue
        # both end at the amount; the longer one is what was said: "not less than" (min) over "less than" (max),
        # "not more than" (max) over "more than" (min)
        cue, direction = min(cues, key=lambda cd: cd[0].start())
        if not marked and _NOT_PRICE_LEAD.search(before[:cue.start()]):
            continue  # "rating >= 4", "reviews over 500" (not written as money): a bound on something else
        out.append(PriceBound(value, direction, marked=marked,
                              span=(start + cue.start(), m.start() + len(m.group(0).rstrip())),
                              cue=cue.group(0).strip().lower()))
    return out


_COUNT_RE = re.compile(rf"{_NUM}\s*(?:{_UNIT})?\s*\+?\s*(?:user |customer |buyer )?(?:ratings|reviews|reviewers|votes|raters)\b",
                       re.I)
_TOP_K_RE = re.compile(r"\b(?:top|show(?: me)?|list|give me|just|only|(?:recommend|suggest)(?: me)?)\s+(\d{1,2})\b(?![.,]\d|\s*(?:k\b|%|★|\+|stars?\b"
                       r"|rs\b|rupees|inr\b|/-|lakh|thousand|(?:user |customer )?(?:ratings|reviews|reviewers)))"
                       r"|\b(\d{1,2})\s+(?:results|options|items|products|picks|suggestions)\b"
                       # a number that opens the question or follows "the": "8 fast chargers ...", "which are the 3 pens"
                       r"|(?:^\W*|\bthe\s+)(\d{1,2})\s+(?=[a-z])(?!(?:k|star|stars|rs|rupees|inr|lakh|thousand|ratings?"
                       r"|reviews?|reviewers|votes|percent|out of)\b)", re.I)


def stated_counts(question: str) -> list[float]:
    """Rating counts the question states: "10k user reviews", "2,000+ customer ratings" (values, in order)."""
    return [_amount(m.group(1), m.group(2)) for m in _COUNT_RE.finditer(question)]


# numbers a question spells out ("give me two Zebronics speakers"); not "one", which is as often a pronoun
_SPELLED_NUMBERS = {w: i for i, w in enumerate(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split(), 2)} | {"twenty": 20}
_SPELLED_RE = re.compile(rf"\b({'|'.join(_SPELLED_NUMBERS)})\b(?=\s)", re.I)


def stated_top_k(question: str) -> list[int]:
    """How many results the question asks for: "top 10", "show 6", "(8 results)", "3 options", "8 fast chargers",
    also spelled out ("give me two speakers")."""
    text = _SPELLED_RE.sub(lambda m: str(_SPELLED_NUMBERS[m.group(1).lower()]), question)
    return [int(m.group(1) or m.group(2) or m.group(3)) for m in _TOP_K_RE.finditer(text)]


# ------------------------------------------------------------------------------------------------ ratings
_RATING_RES = [
    re.compile(r"\brat(?:ed|ing(?: of| is)?)\s*(?:at\s*(?:least)?\s*|above\s*|over\s*|>=?\s*)?([0-5](?:\.\d+)?)"
               r"(?!\s*(?:k\b|,\d|\d))", re.I),
    re.compile(r"\b([0-5](?:\.\d+)?)\s*(?:\+\s*)?(?:-?\s*stars?|★|/\s*5\b|out of 5)", re.I),
    re.compile(r"\b([0-5]\.\d+|[0-5])\s*(?:\+\s*)?(?:-?\s*stars?\s*)?(?:average\s*|avg\s*|customer\s*)?rating\b", re.I),
    re.compile(r"\b(?:minimum|min)\s+rating\s*(?:of\s*)?([0-5](?:\.\d+)?)\b(?![.,]?\d)", re.I),
]
# a rating the question asks as a floor: "4+", "4 stars and above", "at least 4 stars", "rated over 4"
_MIN_RATING_CUE = re.compile(r"\+|and (?:above|up|more|over)|or (?:more|above|better|higher)|at least|above|over"
                             r"|minimum|min\b|>|≥|rated", re.I)


@dataclass(frozen=True)
class StatedRating:
    value: float
    floor: bool  # worded as a minimum ("4+", "at least 4 stars", "rated 4.2")


def stated_ratings(question: str) -> list[StatedRating]:
    """Star ratings the question states ("rated 4.1", "3.7 stars", "4.4★", "4 out of 5"), in order, once each;
    a count such as "4.7K reviews" is not a rating."""
    found: dict[float, tuple[int, bool]] = {}
    for rx in _RATING_RES:
        for m in rx.finditer(question):
            value = float(m.group(1))
            if not 0 <= value <= 5:
                continue
            around = question[max(0, m.start() - 12):m.end() + 14]
            floor = bool(_MIN_RATING_CUE.search(around))
            start, was_floor = found.get(value, (m.start(), False))
            found[value] = (min(start, m.start()), floor or was_floor)
    return [StatedRating(v, f) for v, (_, f) in sorted(found.items(), key=lambda kv: kv[1][0])]


# ---------------------------------------------------------------------------------------------- sort order
# in this order: an earlier kind's match hides its words from the later ones ("best deal" is not "best" rated)
_SORT_RES = [
    ("discount", re.compile(r"\b(?:(?:biggest|highest|largest|best|deepest|steepest|greatest|max(?:imum)?|most|top)"
                            r"\s+(?:discounts?|deals?|markdowns?|offers?)|most discounted|(?:sorted |ordered )?by discount"
                            r"|discounts? first)\b", re.I)),
    ("price_high", re.compile(r"\b(?:most expensive|priciest|costliest|highest[- ]price[ds]?|(?:price )?high to low"
                              r"|premium(?:-priced)?|expensive first|cost(?:s|ing)? the most|most costly)\b", re.I)),
    ("price_low", re.compile(r"\b(?:cheapest|cheap|lowest[- ]price[ds]?|least expensive|most affordable|affordable"
                             r"|cost(?:s|ing)? the least|least costly"
                             r"|(?:price )?low to high|budget(?!\s*(?:of|is|:|=|\d|₹|rs\b))|cheapest first)\b", re.I)),
    ("rating", re.compile(r"\b(?:best[- ]rated|top[- ]rated|highest[- ]rated|best[- ]reviewed|highly[- ]rated"
                          r"|(?:sorted |ordered )?by rating|best ratings?|highest ratings?|best(?!\s+(?:price|value))"
                          r"|(?:good|great|excellent|high|strong)\s+(?:ratings|reviews)(?!\s+counts?)|well[- ]rated"
                          r")\b", re.I)),
]
# "a budget", "my budget", "500 budget": a price limit, not a sort
_BUDGET_LIMIT = re.compile(r"(?:\b(?:a|my|our|your|the|in)|\d{3,}|\dk|/-|\brs|rupees)\s*$", re.I)
SORT_WORDS = ("sort", "sorted", "order", "ordered", "first", "cheapest", "cheap", "expensive", "priciest",
              "costliest", "premium", "affordable", "highest", "lowest", "best", "top", "biggest", "largest", "deepest",
              "discount", "discounts", "discounted", "deal", "deals", "markdown", "low", "high", "highly")


# the words of the sort phrases, for reading them through typos ("deepset discoynt", "hihgly rated")
_SORT_VOCABULARY = ("biggest", "highest", "largest", "deepest", "steepest", "greatest", "maximum", "discount",
                    "discounts", "discounted", "markdown", "expensive", "priciest", "costliest", "premium", "cheapest",
                    "affordable", "budget", "lowest", "highly", "rated", "reviewed", "rating", "ratings", "sorted",
                    "ordered")


# short sort words, read through two letters swapped only ("bets deal", "tpo rated")
_SHORT_SORT_WORDS = ("best", "top", "deal", "deals", "cheap")


def _swapped(word: str, words: tuple[str, ...]) -> str | None:
    """The word of ``words`` that ``word`` is with two neighbouring letters swapped ("bets" -> "best"), or None."""
    for i in range(len(word) - 1):
        fixed = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if fixed != word and fixed in words:
            return fixed
    return None


def _spelled(question: str) -> str:
    """The question with typos of sort-phrase words written right (words of 5+ letters, 82 % alike; shorter ones
    with two letters swapped)."""
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        # comparatives are bounds, not orders: "cheaper than" is not "cheapest", "costlier than" not "costliest"
        if low in _SORT_VOCABULARY or low in _SHORT_SORT_WORDS or low.endswith("er"):
            return word
        return typo_of(low, _SORT_VOCABULARY, min_len=5, cutoff=0.82) or _swapped(low, _SHORT_SORT_WORDS) or word
    return re.sub(r"[A-Za-z]+", fix, question)


def stated_sort(question: str) -> str | None:
    """The one ``sort_by`` the question words ("cheapest", "price high to low", "best rated", "biggest discount",
    also through typos: "deepset discoynt"), or None where it words none or several."""
    text = _spelled(question)
    kinds: set[str] = set()
    for kind, rx in _SORT_RES:
        for m in rx.finditer(text):
            if m.group(0).lower().startswith("budget") and _BUDGET_LIMIT.search(text[:m.start()]):
                continue
            kinds.add(kind)
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
    return kinds.pop() if len(kinds) == 1 else None


def words_of_sorting(question: str) -> bool:
    """Whether any word of the question is (or is a typo of) a word that can ask for an order."""
    if stated_sort(question) is not None:
        return True
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", question)]
    return any(w in SORT_WORDS or (not w.endswith("er") and typo_of(w, SORT_WORDS, min_len=5, cutoff=0.8))
               for w in words)


# ---------------------------------------------------------------------------------------- named category
_CATEGORY_CUES = [
    re.compile(r"\b(?:in|from|within)\s+(?:the\s+)?((?:[\w&'-]+\s+){0,4}?[\w&'-]+)\s+"
               r"(?:category|section|department|aisle)\b", re.I),
    # lookaheads: one cue's words may hold the next cue ("in Electronics or in OfficeProducts")
    re.compile(r"(?=\bcategory\s*[:=]?\s*((?:[\w&'-]+\s*){1,5}))", re.I),
    re.compile(r"(?=\b(?:in|from|within|among)\s+(?:the\s+)?((?:[\w&'-]+\s*){1,5}))", re.I),
]


def _leading_name(words: list[str], names: "NameIndex") -> tuple[str, int] | None:
    """The catalog name the longest leading run of ``words`` spells exactly (or as a plural), and its length."""
    for n in range(len(words), 0, -1):
        name = names.resolve(" ".join(words[:n]), fuzzy=False)
        if name is not None:
            return name, n
    return None


def stated_category(question: str, names: "NameIndex") -> str | None:
    """The one catalog category the question names as a place to look ("in Home&Kitchen", "from the Electronics
    section", "(category Electronics)", "in the smart televisions category"), as the catalog writes it; None
    when it names none or several. Only exact names (or their plurals) count: a word after "in" that is not a
    catalog category is not one."""
    found: set[str] = set()
    for rx in _CATEGORY_CUES:
        for m in rx.finditer(question):
            named = _leading_name(m.group(1).split(), names)
            if named is not None:
                found.add(named[0])
        if found:
            break
    return found.pop() if len(found) == 1 else None


# ------------------------------------------------------------------------------------------------ grouping
# "by brand", "per category", and the ranked forms "which brand ...", "what category ...", "top 5 brands ..."
_GROUP_RE = re.compile(r"\b(?:by|per|each|every|for each|across|which|what|(?:top|bottom)\s+\d{1,2})\s+([a-z]+)"
                       r"(?:\s+(band|range)s?)?\b", re.I)
_GROUPS = {"brand": "brand", "brands": "brand", "category": "category", "categories": "category"}


def stated_group(question: str) -> str | None:
    """The one ``group_by`` the question words ("by brand", "per category", "by braand", "by price band", "which
    brabd discounts ...", "top 5 categories ..."), or None where it words none or several."""
    found = set()
    for m in _GROUP_RE.finditer(question):
        word = m.group(1).lower()
        if word == "price" and m.group(2):
            found.add("price_band")
            continue
        group = typo_of(word, tuple(_GROUPS), min_len=5, cutoff=0.8)
        if group is not None:
            found.add(_GROUPS[group])
    return found.pop() if len(found) == 1 else None


# ------------------------------------------------------------------------------------------ product phrase
_COUNT_LEAD = re.compile(r"(?:\b(?:with|having|that have|has|and)\s+)?(?:\b(?:at least|over|more than|min(?:imum)?|above"
                         r"|atleast)\s*)?$", re.I)
_RATING_LEAD = re.compile(r"(?:\b(?:with|having|and)\s+)?(?:\b(?:a\s+)?(?:rating|rated)\s+(?:of\s+)?)?"
                          r"(?:\b(?:at least|above|over|min(?:imum)?)\s*)?$", re.I)
_RATING_TAIL = re.compile(r"^\s*(?:\+|★|stars?\b|and (?:above|up|more|over)\b|or (?:more|above|better|higher)\b)*",
                          re.I)
_SUFFIX_RE = re.compile(r"\b(?:for (?:a gift|my (?:mom|dad|wife|husband|son|daughter|friend)|office use|home)"
                        r"|on the site|in (?:our|the) catalog(?:ue)?|across the catalog)\b", re.I)
_PRODUCT_STOP = frozenset(
    "show find search list need suggest recommend get got want looking look help sell do we you i me us can could "
    "would please pls thanks thank asap any some the a an are is there what which where have has for with having "
    "that in from of to and or by sorted ordered results options items products picks under below above over "
    "within upto up between less more than at least most min max minimum maximum priced costing rated rating "
    "ratings reviews stars star budget cheap hey hi ok so also just only top best i'm im i'd".split())


# an amount after these alone, not written as money, may be a model number ("Kitchoo Max 10", "from 2 brands")
AMBIGUOUS_BOUND_WORDS = frozenset({"max", "maximum", "min", "minimum", "from"})


def _spans(question: str, names: "NameIndex | None") -> list[tuple[int, int]]:
    """Where the question states filters, orders, result numbers or a category to look in."""
    spans = [b.span for b in price_bounds(question) if b.marked or b.cue not in AMBIGUOUS_BOUND_WORDS]
    for m in _AMOUNT_RE.finditer(question):  # any amount written as money, with or without a bound word
        if m.group(1) and _MONEY_RE.search(m.group(0)):
            spans.append(m.span())
    for m in _COUNT_RE.finditer(question):
        lead = _COUNT_LEAD.search(question[:m.start()])
        spans.append((lead.start() if lead else m.start(), m.end()))
    for rx in _RATING_RES:
        for m in rx.finditer(question):
            lead = _RATING_LEAD.search(question[:m.start()])
            tail = _RATING_TAIL.match(question[m.end():])
            spans.append((lead.start() if lead else m.start(), m.end() + (tail.end() if tail else 0)))
    spans += [m.span() for m in _TOP_K_RE.finditer(question)]
    spans += [m.span() for _, rx in _SORT_RES for m in rx.finditer(question)]
    spans += [m.span() for m in _SUFFIX_RE.finditer(question)]
    if names is not None:
        for rx in _CATEGORY_CUES[:2]:  # "in the X category", "(category X)": the whole cue
            for m in rx.finditer(question):
                if names.resolve(m.group(1).strip(), fuzzy=False) is not None:
                    spans.append((m.start(), m.start(1) + len(m.group(1))) if m.end() == m.start() else m.span())
        for m in _CATEGORY_CUES[2].finditer(question):  # "in Home&Kitchen": the cue and the name
            words = m.group(1).split()
            named = _leading_name(words, names)
            if named is not None:
                last = words[named[1] - 1]
                spans.append((m.start(), question.find(last, m.start(1)) + len(last)))
    return [s for s in spans if s[1] > s[0]]


def product_phrase(question: str, names: "NameIndex | None" = None) -> str | None:
    """The product words of a search question: what is left when its filters, order, result number, category to
    look in, request words ("find me", "do we sell") and courtesy ("please", "for a gift") are taken out ("Got any
    Pulsefit smartwatch under Rs 800 with rating >= 3 thanks" -> "Pulsefit smartwatch"); the first such run of
    words, or None when nothing is left."""
    masked = list(question)
    for start, end in _spans(question, names):
        masked[start:end] = "|" * (end - start)
    runs = re.split(r"[|?!;:()]+|[.,](?!\d)|\s-\s", "".join(masked))
    for run in runs:
        words = run.split()
        while words and words[0].lower().strip("'\"") in _PRODUCT_STOP:
            words.pop(0)
        while words and words[-1].lower().strip("'\"") in _PRODUCT_STOP:
            words.pop()
        if words:
            return " ".join(words)
    return None


# ------------------------------------------------------------------------------------------ kind of product
# a lookahead, so that a rejected phrase ("the likely discount on a ...") does not hide the next one
_KIND_RE = re.compile(r"(?=\b(?:an?|the|my|our|for|on|of)\s+((?:[\w&'-]+\s+){0,5}?[\w&'-]+?)\s*(?:\b(?:mrp|priced|"
                      r"listed|costing|costs?|at|for|with|that|which|worth|selling|rated|having|has)\b|[(,|:]|₹))", re.I)
_KIND_STOP = frozenset("a an the discount discounts good likely typical expected price product item one new of for "
                       "what how much is it its".split())


def stated_kind(question: str) -> str | None:
    """The kind of product a discount question is about, as it writes it ("what's the likely discount on a
    WeighingScales MRP rs 849" -> "WeighingScales", "a usb cable costing 599 rupees" -> "usb cable"); the last
    such phrase, or None."""
    found = None
    for m in _KIND_RE.finditer(question):
        words = m.group(1).split()
        if words and not any(w.lower() in _KIND_STOP or re.search(r"\d", w) for w in words):
            found = " ".join(words)
    return found


# ------------------------------------------------------------------------------------------- ranking order
# words that rank groups lowest first ("bottom 3 brands by rating") and highest first
ASCENDING_WORDS = ("lowest", "least", "worst", "bottom", "smallest", "fewest", "cheapest", "minimum")
DESCENDING_WORDS = ("highest", "most", "top", "biggest", "largest", "best", "deepest", "costliest", "priciest",
                    "maximum", "greatest")


def worded(question: str, words: tuple[str, ...]) -> bool:
    """Whether the question has one of ``words``, or a typo of one ("loowest", "lwoest", "wort")."""
    return any(typo_of(word, words, min_len=4, cutoff=0.8) for word in re.findall(r"[a-z]+", question.lower()))


def stated_order(question: str) -> str | None:
    """How the question ranks groups: "asc" for "lowest / least / bottom / cheapest ..." (or a typo of one), "desc"
    for "highest / most / top / best ...", None for neither or both."""
    asc, desc = worded(question, ASCENDING_WORDS), worded(question, DESCENDING_WORDS)
    return None if asc == desc else ("asc" if asc else "desc")
