"""Cross-check of a model's price filters against the bounds the question states explicitly.

The tuned 135M model picks the right tool and copies numbers well, but its most frequent argument error is the
direction of a price bound: "more than ₹1,400" sent as ``max_price`` (docs/finetune.md). The question itself says
which direction is meant, in plain words, so the agent reads it and moves the number to the right key. The
check never adds a number the question does not state and never touches a number it cannot attribute to a
price phrase; it only swaps ``min_price``/``max_price`` or completes a stated range ("₹500 to ₹600").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from agent.protocol import UNIT_SCALE

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
_NOT_PRICE_RE = re.compile(r"^\s*\+?\s*(?:user |customer )?(?:ratings\b|reviews?\b|reviewers|votes|stars?\b|★)", re.I)


@dataclass(frozen=True)
class PriceBound:
    value: float
    direction: str  # "min" | "max"
    in_range: bool = False  # one end of a stated range ("₹500 to ₹600")


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
        if _MAX_RE.search(before):
            out.append(PriceBound(_amount(m.group(1), m.group(2)), "max"))
        elif _MIN_RE.search(before):
            out.append(PriceBound(_amount(m.group(1), m.group(2)), "min"))
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.01, abs_tol=0.01)


def check_price_bounds(arguments: dict[str, Any], question: str) -> tuple[dict[str, Any], list[str]]:
    """``search_products`` arguments with min/max price set as the question words them, plus what changed.

    Only numbers the model already used (or the other end of a range the question states) are placed; a
    model price that matches no stated bound is left as it is.
    """
    bounds = price_bounds(question)
    have = {k: arguments[k] for k in ("min_price", "max_price") if isinstance(arguments.get(k), (int, float))}
    if not bounds or not have:
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
    if not changes:
        return arguments, []
    out.pop("min_price", None)
    out.pop("max_price", None)
    out.update(placed)
    if "min_price" in out and "max_price" in out and out["min_price"] > out["max_price"]:
        return arguments, []  # contradictory reading: keep the model's call untouched
    return out, changes
