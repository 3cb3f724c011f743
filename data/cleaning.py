"""Parsers for the raw catalog's quirky cells. Each returns a clean value or raises ``CellError``.

Quirks handled (all seen in the real file): ``₹1,099`` prices, ``64%`` discounts, ``24,269`` and Indian-grouped
``1,79,691`` counts, a rating of ``|``, empty rating_count cells, comma-joined multi-review fields.
"""
from __future__ import annotations

import math
import re

from data.schema import CATEGORY_SEP, Review

MISSING_MARKERS = frozenset({"", "|", "-", "--", "nan", "none", "null", "n/a", "na"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_JOIN_SPLIT = re.compile(r",(?=\S)")
_URL = re.compile(r"https?://\S+")


class CellError(ValueError):
    """A cell could not be parsed; the message says why (the caller adds column and row)."""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def is_missing(value: object) -> bool:
    return _text(value).lower() in MISSING_MARKERS


def _number(value: object, what: str) -> float:
    text = _text(value)
    cleaned = text.replace("₹", "").replace("Rs.", "").replace("Rs", "").replace(",", "").replace(" ", "")
    if not _NUMBER.match(cleaned):
        raise CellError(f"{text!r} is not a valid {what}")
    number = float(cleaned)
    if not math.isfinite(number):
        raise CellError(f"{text!r} is not a finite {what}")
    return number


def parse_price(value: object, *, required: bool = True) -> float | None:
    """``₹1,099`` / ``1099`` / ``1,099.50`` -> 1099.0. Must be > 0."""
    if is_missing(value):
        if required:
            raise CellError("price is empty")
        return None
    price = _number(value, "price")
    if price <= 0:
        raise CellError(f"price must be positive, got {_text(value)!r}")
    return price


def parse_percentage(value: object) -> float | None:
    """``64%`` -> 64.0 (0-100). Empty -> None."""
    if is_missing(value):
        return None
    text = _text(value).rstrip("%").strip()
    pct = _number(text, "percentage")
    if not 0 <= pct <= 100:
        raise CellError(f"percentage must be within 0-100, got {_text(value)!r}")
    return pct


def parse_rating(value: object) -> float | None:
    """``4.2`` -> 4.2 (0-5); ``|`` and empty -> None."""
    if is_missing(value):
        return None
    rating = _number(value, "rating")
    if not 0 <= rating <= 5:
        raise CellError(f"rating must be within 0-5, got {_text(value)!r}")
    return rating


def parse_count(value: object) -> int | None:
    """``24,269`` / Indian ``1,79,691`` -> int; empty -> None."""
    if is_missing(value):
        return None
    count = _number(value, "count")
    if count < 0 or count != int(count):
        raise CellError(f"count must be a non-negative whole number, got {_text(value)!r}")
    return int(count)


def parse_category(value: object) -> tuple[str, ...]:
    """``A|B|C`` -> ("A", "B", "C"); empty levels dropped. Raises when nothing is left."""
    levels = tuple(part.strip() for part in _text(value).split(CATEGORY_SEP) if part.strip())
    if not levels:
        raise CellError("category is empty")
    return levels


def parse_required_text(value: object, what: str) -> str:
    text = _text(value)
    if not text:
        raise CellError(f"{what} is empty")
    return text


_GENERIC_FIRST_WORDS = frozenset({"the", "new", "original", "genuine", "premium", "latest"})


def extract_brand(name: str) -> str:
    """Brand heuristic: the first word of the product name (skipping generic words), punctuation trimmed."""
    words = [w.strip("()[]{},.:;-_/\"'®™") for w in name.split()]
    words = [w for w in words if w]
    for word in words[:3]:
        if word.lower() not in _GENERIC_FIRST_WORDS:
            return word
    return words[0] if words else ""


def split_joined(value: object) -> list[str]:
    """Split a comma-joined multi-review cell. Reviews are joined by ``,`` with no space after it, while commas
    inside a review are normally followed by a space; a best-effort split on that rule."""
    text = _text(value)
    if not text:
        return []
    return [part.strip() for part in _JOIN_SPLIT.split(text) if part.strip()]


def parse_reviews(review_ids: object, titles: object, contents: object, user_names: object) -> tuple[Review, ...]:
    """Pair up the comma-joined review fields. Image links inside review text are dropped."""
    ids = [i for i in _text(review_ids).split(",") if i.strip()]
    title_parts = split_joined(titles)
    content_parts = [c for c in (_URL.sub("", part).strip() for part in split_joined(contents)) if c]
    names = split_joined(user_names)
    n = len(ids) or max(len(title_parts), 1 if content_parts else 0)
    if len(title_parts) != n:  # ambiguous split: keep titles as one block on the first review
        title_parts = [_text(titles)] + [""] * (n - 1) if n else []
    if len(content_parts) != n and n:  # content never splits cleanly for every review; merge the tail
        if len(content_parts) > n:
            content_parts = content_parts[: n - 1] + [", ".join(content_parts[n - 1:])]
        else:
            content_parts = content_parts + [""] * (n - len(content_parts))
    reviews = []
    for k in range(n):
        reviews.append(Review(
            review_id=ids[k].strip() if k < len(ids) else f"r{k}",
            title=title_parts[k] if k < len(title_parts) else "",
            content=content_parts[k] if k < len(content_parts) else "",
            user_name=names[k] if k < len(names) and len(names) == n else "",
        ))
    return tuple(r for r in reviews if r.title or r.content)
