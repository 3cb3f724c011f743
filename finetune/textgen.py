"""Surface variation for generated questions: Indian number formats, price/count/rating wordings, typos.

Every ``*_text`` function returns ``(text, value)``: the wording that goes into the question and the exact value
the tool call must carry, so the target is always consistent with what the user wrote.
"""
from __future__ import annotations

import random

from data.demo import indian_grouping, western_grouping
from data.names import spoken_name as humanize_category  # noqa: F401 - the dataset's spelling of a category
from finetune.templates import BRAND_SYLLABLES_END, BRAND_SYLLABLES_MID, BRAND_SYLLABLES_START



# the same digit groupings the demo catalog generator writes
indian_commas = indian_grouping  # 1234567 -> '12,34,567' (lakh/crore grouping)
western_commas = western_grouping  # 1234567 -> '1,234,567'


def _fmt_k(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text


def price_text(rng: random.Random, value: int) -> tuple[str, int]:
    """A rupee amount as users type it. Returns (text, value in ₹)."""
    v = int(value)
    forms = [
        lambda: f"₹{indian_commas(v)}", lambda: f"₹{v}", lambda: f"Rs {v}", lambda: f"Rs. {indian_commas(v)}",
        lambda: f"rs {v}", lambda: f"{v} rupees", lambda: f"INR {indian_commas(v)}", lambda: f"{indian_commas(v)}/-",
        lambda: f"₹ {indian_commas(v)}", lambda: f"{v} rs",
    ]
    if v >= 1000 and v % 100 == 0:
        forms += [lambda: f"{_fmt_k(v / 1000)}k", lambda: f"₹{_fmt_k(v / 1000)}k", lambda: f"Rs {_fmt_k(v / 1000)}K"]
    if v >= 100000 and v % 10000 == 0:
        forms += [lambda: f"{_fmt_k(v / 100000)} lakh", lambda: f"₹{_fmt_k(v / 100000)} lakh"]
    return rng.choice(forms)(), v


def round_count(rng: random.Random, n: int) -> tuple[str, int]:
    """A rating count as users type it; k/lakh forms round the value, and the value returned is the rounded one."""
    n = int(n)
    options: list[tuple[str, int]] = [(indian_commas(n), n), (str(n), n)]
    if n >= 1000:
        options.append((western_commas(n), n))
        k = round(n / 1000, 1)
        options.append((f"{_fmt_k(k)}k", int(round(k * 1000))))
        options.append((f"{_fmt_k(k)}K", int(round(k * 1000))))
    if n >= 100000:
        lk = round(n / 100000, 1)
        options.append((f"{_fmt_k(lk)} lakh", int(round(lk * 100000))))
    return rng.choice(options)


COUNT_NOUNS = ["reviews", "ratings", "customer ratings", "user reviews", "reviewers", "ratings on the site"]


def count_text(rng: random.Random, n: int) -> tuple[str, int]:
    text, value = round_count(rng, n)
    return f"{text} {rng.choice(COUNT_NOUNS)}", value


def rating_text(rng: random.Random, r: float) -> tuple[str, float]:
    """'rated 4.1', '4.1 stars', '4.1/5', ... Returns (text, rating)."""
    s = f"{r:.1f}"
    forms = [f"rated {s}", f"{s} stars", f"{s}/5", f"a {s} star rating", f"rating {s}", f"rating of {s}",
             f"{s}★", f"avg rating {s}", f"{s} out of 5", f"{s} star"]
    return rng.choice(forms), float(s)


_KEYBOARD_NEIGHBOURS = {
    "a": "qs", "e": "wr", "i": "uo", "o": "ip", "u": "yi", "s": "ad", "t": "ry", "r": "et", "n": "bm", "c": "xv",
    "h": "gj", "l": "k", "m": "n", "p": "o", "d": "sf", "g": "fh", "b": "vn", "w": "qe",
}


def typo(rng: random.Random, word: str) -> str:
    """One plausible typo in a word of 4+ letters (swap, drop, double or neighbour key); others unchanged."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    ch = word[i].lower()
    return word[:i] + rng.choice(_KEYBOARD_NEIGHBOURS.get(ch, ch)) + word[i + 1:]


def add_typos(rng: random.Random, text: str, p: float) -> str:
    """Apply :func:`typo` to each alphabetic word with probability ``p`` (numbers and symbols untouched)."""
    return " ".join(typo(rng, w) if rng.random() < p else w for w in text.split(" "))


def casing(rng: random.Random, text: str) -> str:
    """Random first-letter casing (the rest is left alone so copied phrases keep their case)."""
    r = rng.random()
    if r < 0.4:
        return text[:1].lower() + text[1:]
    if r < 0.8:
        return text[:1].upper() + text[1:]
    return text


def brand_name(rng: random.Random) -> str:
    """A made-up brand name in the shapes real brands take ("Voltaro", "ZENIQ", "NovaTek", "Kelvira 9")."""
    head = rng.choice(BRAND_SYLLABLES_START)
    tail = rng.choice(BRAND_SYLLABLES_MID) + rng.choice(BRAND_SYLLABLES_END)
    shape = rng.random()
    if shape < 0.5:
        return head + tail
    if shape < 0.7:
        return (head + tail).upper()
    if shape < 0.9:
        return head + tail.capitalize()
    return f"{head + tail} {rng.randint(1, 9)}"
