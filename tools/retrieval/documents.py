"""Product documents for retrieval: one *profile* chunk per product plus *about* and *review* chunks.

Chunking (why): the embedding model (all-MiniLM-L6-v2) reads at most 256 word pieces (~1,000 characters);
anything longer is silently truncated, and a long text dilutes the signal of its first words. A product's
text has parts of very different length, so each product becomes:

* **title** — name, brand and readable leaf category only (~30 word pieces). A crisp target for "which
  product is it" queries: in a long profile the name is a small part of the vector. Never used as snippet.
* **profile** — name, brand, readable category path, price/discount/rating line and the start of the "about"
  bullets. Answers "what is it" questions; always one chunk, capped at ``PROFILE_CHARS``.
* **about** — the rest of the "about" bullets (median 634, max ~2.6k chars), split on bullet boundaries into
  chunks of at most ``CHUNK_CHARS``.
* **review** — review titles and texts (median ~1k, max ~18.8k chars per product), packed review by review
  into chunks of at most ``CHUNK_CHARS`` (a long review is split on sentence boundaries). Answers "what do
  buyers say" questions.

Every about/review chunk starts with a short product header (brand + the first words of the name) so that
a chunk still says which product it is about, both for the embedding and for BM25. Chunks map back to their
product through ``product_index``; search results are deduplicated per product (the best chunk wins and
supplies the snippet).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from data.schema import ProductRecord

PROFILE_CHARS = 900
CHUNK_CHARS = 700
HEADER_WORDS = 8
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class ProductMeta:
    """Structured fields kept beside the text (JSON-able); used by filters, sorting and result rows."""

    product_id: str
    product_name: str
    brand: str
    category: str
    category_levels: tuple[str, ...]
    leaf_category: str
    discounted_price: float | None
    actual_price: float
    discount_percentage: float | None
    rating: float | None
    rating_count: int | None

    @property
    def price(self) -> float:
        """Price used by price filters and sorting: the discounted price, or the list price when absent."""
        return self.discounted_price if self.discounted_price is not None else self.actual_price

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["category_levels"] = list(self.category_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProductMeta":
        return cls(**{**d, "category_levels": tuple(d["category_levels"])})


@dataclass(frozen=True, slots=True)
class Chunk:
    """One indexed text unit. ``kind`` is ``title``, ``profile``, ``about`` or ``review``."""

    chunk_id: str
    product_index: int
    product_id: str
    kind: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**d)


def humanize_category(level: str) -> str:
    """``USBCables`` -> ``USB Cables``; ``Home&Kitchen`` -> ``Home & Kitchen``; ``In-Ear`` -> ``In-Ear``."""
    text = _CAMEL.sub(" ", level).replace("&", " & ").replace(",", ", ")
    return re.sub(r"\s+", " ", text).strip()


def product_meta(record: ProductRecord) -> ProductMeta:
    return ProductMeta(
        product_id=record.product_id, product_name=record.name, brand=record.brand, category=record.category,
        category_levels=tuple(record.category_levels()), leaf_category=record.leaf_category,
        discounted_price=record.discounted_price, actual_price=record.actual_price,
        discount_percentage=record.discount_percentage, rating=record.rating, rating_count=record.rating_count)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"₹{value:,.0f}"


def product_header(record: ProductRecord) -> str:
    """Short "which product" prefix for about/review chunks: brand + first words of the name."""
    words = record.name.split()
    head = " ".join(words[:HEADER_WORDS])
    if record.brand and not head.lower().startswith(record.brand.lower()):
        head = f"{record.brand} {head}"
    return head


def _bullets(about: str) -> list[str]:
    return [b.strip() for b in about.split("|") if b.strip()]


def _split_long(text: str, limit: int) -> list[str]:
    """Split ``text`` on sentence boundaries (then hard-wrap) into pieces of at most ``limit`` chars."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE.split(text):
        while len(sentence) > limit:  # a "sentence" without punctuation: hard wrap on a space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def _pack(units: Iterable[str], limit: int, sep: str) -> list[str]:
    """Greedily pack text units (each split first if longer than ``limit``) into chunks of <= ``limit``."""
    chunks: list[str] = []
    current = ""
    for unit in units:
        for piece in _split_long(unit, limit):
            if current and len(current) + len(sep) + len(piece) > limit:
                chunks.append(current)
                current = piece
            else:
                current = f"{current}{sep}{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def profile_text(record: ProductRecord) -> tuple[str, list[str]]:
    """The profile chunk text and the about bullets that did not fit into it."""
    path = " > ".join(humanize_category(level) for level in record.category_path)
    facts = [f"price {_money(record.discounted_price)} (list {_money(record.actual_price)}"
             + (f", {record.discount_percentage:g}% off)" if record.discount_percentage is not None else ")")]
    if record.rating is not None:
        count = f" from {record.rating_count:,} ratings" if record.rating_count is not None else ""
        facts.append(f"rated {record.rating:g}/5{count}")
    text = f"{record.name}. Brand: {record.brand}. Category: {path}. {'; '.join(facts)}."
    rest: list[str] = []
    for bullet in _bullets(record.about):
        addition = f" {bullet}" if bullet.endswith((".", "!", "?")) else f" {bullet}."
        if not rest and len(text) + len(addition) <= PROFILE_CHARS:
            text += addition
        else:
            rest.append(bullet)
    return text, rest


def review_units(record: ProductRecord) -> list[str]:
    """One "title: content" text per review (empty ones dropped)."""
    units = []
    for review in record.reviews:
        title, content = review.title.strip(), review.content.strip()
        if title and content:
            units.append(f"{title}{'' if title.endswith(('.', '!', '?')) else ':'} {content}")
        elif title or content:
            units.append(title or content)
    return units


def product_chunks(record: ProductRecord, product_index: int) -> list[Chunk]:
    """All chunks of one product (title and profile first)."""
    profile, rest = profile_text(record)
    header = product_header(record)
    title = f"{record.name}. {record.brand} {humanize_category(record.leaf_category)}."
    chunks = [Chunk(f"{record.product_id}:t", product_index, record.product_id, "title", title),
              Chunk(f"{record.product_id}:p", product_index, record.product_id, "profile", profile)]
    body_limit = max(200, CHUNK_CHARS - len(header) - 20)
    for i, text in enumerate(_pack(rest, body_limit, " ")):
        chunks.append(Chunk(f"{record.product_id}:a{i}", product_index, record.product_id, "about",
                            f"{header} — about: {text}"))
    for i, text in enumerate(_pack(review_units(record), body_limit, " ")):
        chunks.append(Chunk(f"{record.product_id}:r{i}", product_index, record.product_id, "review",
                            f"{header} — buyers say: {text}"))
    return chunks


def build_documents(records: Iterable[ProductRecord]) -> tuple[list[ProductMeta], list[Chunk]]:
    """Metadata (one per product, in order) and chunks (grouped by product, in the same order)."""
    metas: list[ProductMeta] = []
    chunks: list[Chunk] = []
    for record in records:
        chunks.extend(product_chunks(record, len(metas)))
        metas.append(product_meta(record))
    return metas, chunks
